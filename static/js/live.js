// Live page: microphone -> AudioWorklet (16 kHz Int16) -> WebSocket /ws (native protocol).
// Finals replace the greyed partial of their utterance; keywords gather into category cards.
// The socket reconnects by itself and resumes the session with the last event number seen.
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("live-config").textContent);
  const $ = (id) => document.getElementById(id);
  const transcript = $("transcript"), cards = $("keyword-cards"), conn = $("conn");
  const startBtn = $("start"), stopBtn = $("stop"), micSelect = $("mic"), level = $("level");
  const state = { session: null, lastSeq: 0, socket: null, running: false, audio: null, queue: [],
                  retries: 0, followTail: true, keywordCounts: new Map() };

  // data-state keeps the machine's word (tests and styles use it); the text is translated.
  const CONN_LABELS = {
    idle: gettext("idle"),
    connecting: gettext("connecting"),
    connected: gettext("connected"),
    reconnecting: gettext("reconnecting"),
    resumed: gettext("resumed"),
    disconnected: gettext("disconnected"),
    finishing: gettext("finishing…"),
    stopped: gettext("stopped"),
    "continued elsewhere": gettext("continued elsewhere"),
  };
  function setConn(state, text) {
    conn.textContent = text || CONN_LABELS[state] || state;
    conn.dataset.state = state;
  }
  function keywordsLabel(backend, llmAvailable) {
    if (backend !== "vllm") return interpolate(gettext("keywords: %s"), [backend]);
    return interpolate(llmAvailable ? gettext("keywords: %s (answers)") : gettext("keywords: %s (down)"), [backend]);
  }

  // --- transcript rendering -------------------------------------------------------------
  function lineFor(utterance) {
    let el = transcript.querySelector(`[data-utterance="${utterance}"]`);
    if (!el) {
      el = document.createElement("p");
      el.className = "line partial";
      // The box is a polite live region for additions: a partial, rewritten many times a
      // second, stays out of it; its final arrives as a new line, read out once.
      el.setAttribute("aria-hidden", "true");
      el.dataset.utterance = utterance;
      const after = [...transcript.children].find((x) => Number(x.dataset.utterance) > utterance);
      transcript.insertBefore(el, after || null);
    }
    return el;
  }

  function scrollToEnd() { if (state.followTail) transcript.scrollTop = transcript.scrollHeight; }

  transcript.addEventListener("scroll", () => {
    const atEnd = transcript.scrollHeight - transcript.scrollTop - transcript.clientHeight < 40;
    state.followTail = atEnd;   // scrolling up pauses auto-scroll until the user returns
    $("jump").hidden = atEnd;
  });
  $("jump").addEventListener("click", () => { state.followTail = true; scrollToEnd(); $("jump").hidden = true; });

  function onPartial(e) {
    const el = lineFor(e.utterance);
    if (el.classList.contains("final")) return;
    el.textContent = e.text;
    scrollToEnd();
  }

  function onFinal(e) {
    const partial = lineFor(e.utterance);
    if (!e.text) { partial.remove(); return; }
    if (partial.classList.contains("final")) return;
    // A new element, not the partial's rewritten: screen readers announce additions.
    const el = document.createElement("p");
    el.className = "line final";
    el.dataset.utterance = e.utterance;
    el.dataset.segment = e.segment;
    el.textContent = e.text;  // text, never HTML
    partial.replaceWith(el);
    scrollToEnd();
    if (typeof e.queue_wait_s === "number") $("latency").textContent = interpolate(gettext("latency %s s"), [(e.queue_wait_s + e.compute_s).toFixed(2)]);
  }

  function onKeywords(e) {
    for (const item of e.items || []) {
      const key = item.category + "\u0000" + item.word;
      state.keywordCounts.set(key, (state.keywordCounts.get(key) || 0) + 1);
    }
    renderCards();
  }

  function renderCards() {
    const byCategory = new Map();
    for (const [key, count] of state.keywordCounts) {
      const [category, word] = key.split("\u0000");
      if (!byCategory.has(category)) byCategory.set(category, []);
      byCategory.get(category).push([word, count]);
    }
    cards.querySelectorAll(".keyword-card").forEach((c) => c.remove());
    $("no-keywords").hidden = byCategory.size > 0;
    for (const [category, items] of [...byCategory].sort()) {
      const card = document.createElement("section");
      card.className = "keyword-card";
      card.dataset.category = category;
      const h = document.createElement("h3");
      h.textContent = `${category} `;
      const n = document.createElement("span");
      n.className = "muted";
      n.textContent = items.reduce((a, [, c]) => a + c, 0);
      h.append(n);
      const ul = document.createElement("ul");
      for (const [word, count] of items.sort((a, b) => b[1] - a[1])) {
        const li = document.createElement("li");
        li.textContent = `${word} ×${count}`;
        ul.append(li);
      }
      card.append(h, ul);
      cards.append(card);
    }
  }

  function onStatus(e) {
    $("backlog").textContent = interpolate(e.behind ? gettext("backlog %s s (server behind)") : gettext("backlog %s s"), [e.backlog_s.toFixed(1)]);
    $("backlog").classList.toggle("bad", !!e.behind);
    if (typeof e.last_latency_s === "number") $("latency").textContent = interpolate(gettext("latency %s s"), [e.last_latency_s.toFixed(2)]);
  }

  function onEvent(e) {
    if (typeof e.seq === "number") state.lastSeq = Math.max(state.lastSeq, e.seq);
    switch (e.type) {
      case "ready":
        state.session = e.session; state.retries = 0;
        setConn(e.resumed ? "resumed" : "connected");
        $("session-link").href = `/transcripts/${e.session}/`; $("session-link").hidden = false;
        flushQueue();
        break;
      case "partial": onPartial(e); break;
      case "final": onFinal(e); break;
      case "keywords": onKeywords(e); break;
      case "status": onStatus(e); break;
      case "stopped": setConn("stopped"); break;
      case "error":
        console.warn("server error", e.code, e.message);
        if (e.code === "too_many_sessions") {
          stop();
          showBanner(gettext("Too many live sessions are running."),
                     gettext("Stop one in another tab or window, or wait a minute, then press Start again."));
        }
        // Another tab or window resumed this session: this one stops and does not reconnect.
        if (e.code === "taken_over") { state.socket = null; stop(); setConn("continued elsewhere"); }
        break;
    }
  }

  // --- socket ---------------------------------------------------------------------------
  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + "/ws");
    socket.binaryType = "arraybuffer";
    state.socket = socket;
    setConn(state.session ? "reconnecting" : "connecting");
    socket.onopen = () => {
      const start = { type: "start", language: $("language").value, sample_rate: 16000, encoding: "pcm_s16le" };
      if (state.session) start.resume = { session: state.session, last_seq: state.lastSeq };
      socket.send(JSON.stringify(start));
    };
    socket.onmessage = (m) => onEvent(JSON.parse(m.data));
    socket.onclose = () => {
      if (state.socket !== socket) return;
      state.socket = null;
      if (!state.running) { setConn("idle"); return; }
      // Audio captured meanwhile waits in the queue and goes out after the resume.
      const delay = Math.min(10000, 500 * 2 ** state.retries++);
      setConn("disconnected");
      setTimeout(() => { if (state.running) connect(); }, delay);
    };
  }

  function send(frame) {
    const s = state.socket;
    if (s && s.readyState === WebSocket.OPEN && conn.dataset.state !== "connecting" && conn.dataset.state !== "reconnecting") s.send(frame);
    else state.queue.push(frame);
  }

  function flushQueue() {
    while (state.queue.length && state.socket && state.socket.readyState === WebSocket.OPEN) state.socket.send(state.queue.shift());
  }

  // --- microphone -----------------------------------------------------------------------
  // What to do when there is no microphone, in a banner above the controls: built from text
  // nodes and links, never HTML.
  const banner = $("mic-banner");
  const summary = JSON.parse(document.getElementById("platform-summary").textContent);

  function showBanner(title, ...parts) {
    const strong = document.createElement("strong");
    strong.textContent = title;
    banner.replaceChildren(strong, " ", ...parts);
    banner.hidden = false;
  }

  function link(href, text) {
    const a = document.createElement("a");
    a.href = href; a.textContent = text || href;
    return a;
  }

  // Browsers give the microphone only to secure origins (https, or localhost): opened as
  // http://<machine>:5000/ from another computer, navigator.mediaDevices is not there at all.
  function explainInsecureOrigin() {
    startBtn.disabled = true;
    const why = gettext("Browsers give the microphone only to pages opened over https (or on the server itself, as localhost).");
    if (!summary.https_port) {
      showBanner(gettext("The microphone needs HTTPS."), why + " " + gettext("This platform serves no https address: ask its operator for one."));
      return;
    }
    const secure = new URL(location.href);
    secure.protocol = "https:"; secure.port = String(summary.https_port); secure.hash = "";
    // The link goes where the translation puts %(address)s.
    const [before, after] = gettext("Open this page at %(address)s.").split("%(address)s");
    showBanner(gettext("The microphone needs HTTPS."), why + " " + before, link(secure.href), after || "");
    // The platform's own certificate authority, when it made one: installing it once stops the
    // browser's warning about the https address.
    fetch("/tls/ca.crt").then((r) => {
      if (!r.ok) return;
      const [head, tail] = gettext("If the browser warns about the certificate, install this platform's %(authority)s once.").split("%(authority)s");
      banner.append(" " + head, link("/tls/ca.crt", gettext("certificate authority")), tail || "");
    }).catch(() => {});
  }

  function explainMicrophoneError(err) {
    switch (err.name) {
      case "NotAllowedError":
        showBanner(gettext("The microphone is blocked for this page."),
                   gettext("Allow it in the browser's site settings (the icon left of the address; on a Mac also System Settings › Privacy & Security › Microphone), then press Start again."));
        break;
      case "NotFoundError":
        showBanner(gettext("No microphone was found."), gettext("Plug one in (or choose another under Microphone), then press Start again."));
        break;
      case "NotReadableError":
        showBanner(gettext("The microphone could not be opened."), gettext("Another program may be using it: close that program, then press Start again."));
        break;
      case "OverconstrainedError":
        showBanner(gettext("The chosen microphone is gone."), gettext("Choose another under Microphone, then press Start again."));
        break;
      default:
        showBanner(gettext("The microphone could not be started."), `${err.message || err.name}.`);
    }
  }

  async function listMics() {
    try {
      const devices = await navigator.mediaDevices.enumerateDevices();
      const current = micSelect.value;
      micSelect.querySelectorAll("option:not([value=''])").forEach((o) => o.remove());
      devices.filter((d) => d.kind === "audioinput").forEach((d, i) => {
        const o = document.createElement("option");
        o.value = d.deviceId; o.textContent = d.label || interpolate(gettext("Microphone %s"), [i + 1]);
        micSelect.append(o);
      });
      micSelect.value = current;
    } catch (e) { /* no devices API */ }
  }

  async function start() {
    startBtn.disabled = true;
    try {
      const constraints = { audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true,
                                     deviceId: micSelect.value ? { exact: micSelect.value } : undefined } };
      const stream = await navigator.mediaDevices.getUserMedia(constraints);
      banner.hidden = true;
      const context = new AudioContext();
      await context.audioWorklet.addModule(config.worklet);
      const source = context.createMediaStreamSource(stream);
      const node = new AudioWorkletNode(context, "capture-processor");
      node.port.onmessage = (m) => { level.value = Math.min(1, m.data.level * 4); send(m.data.frame); };
      source.connect(node);
      state.audio = { stream, context, node };
      state.running = true;
      state.session = null; state.lastSeq = 0; state.queue = [];
      transcript.textContent = ""; state.keywordCounts.clear(); renderCards();
      stopBtn.disabled = false;
      connect();
      listMics();
    } catch (err) {
      startBtn.disabled = false;
      setConn("microphone unavailable", interpolate(gettext("microphone unavailable: %s"), [err.message]));
      explainMicrophoneError(err);
    }
  }

  function stop() {
    state.running = false;
    stopBtn.disabled = true; startBtn.disabled = false;
    if (state.audio) {
      state.audio.node.disconnect();
      state.audio.stream.getTracks().forEach((t) => t.stop());
      state.audio.context.close();
      state.audio = null;
    }
    level.value = 0;
    flushQueue();
    if (state.socket && state.socket.readyState === WebSocket.OPEN) {
      state.socket.send(JSON.stringify({ type: "stop" }));
      // The last finals and keywords still come; "stopped" is the session's last event.
      setConn("finishing");
    }
  }

  startBtn.addEventListener("click", start);
  stopBtn.addEventListener("click", stop);
  if (!window.isSecureContext || !navigator.mediaDevices) explainInsecureOrigin();
  listMics();

  // GPU memory and LLM state refresh while the page is open.
  async function refreshPlatform() {
    try {
      const c = await (await fetch("/api/config")).json();
      const gpu = (c.gpus || [])[0];
      $("device").textContent = gpu ? `GPU ${gpu.name} ${gpu.memory_used_mb}/${gpu.memory_total_mb} MiB` : `CPU (${c.whisper_compute_type})`;
      $("llm").textContent = keywordsLabel(c.keyword_backend_active, c.llm_available);
    } catch (e) { /* keep the last known values */ }
  }
  refreshPlatform();
  setInterval(refreshPlatform, 10000);
})();
