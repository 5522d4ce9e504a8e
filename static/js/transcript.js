// The transcript page: play from a segment or a word, follow playback segment by segment and
// word by word, rename, delete, and show segments as a running transcription stores them
// (reloading when it finishes). Text is only ever set as text.
(function () {
  "use strict";

  const list = document.getElementById("segments");
  const player = document.getElementById("player");
  const statusEl = document.getElementById("status");
  const errorEl = document.getElementById("action-error");
  if (!list) return;
  const transcriptId = list.dataset.transcript;
  const apiUrl = list.dataset.apiUrl;

  function showError(message) {
    errorEl.textContent = message;
    errorEl.hidden = false;
  }

  function csrfToken() {
    const input = document.querySelector("#rename-form [name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  // --- the player, the segments and their words ------------------------------------------
  // Segments with word timings show each word in a <span class="word">; the word being
  // played gets the class "current-word" (styled with more than colour).
  let segments = [];
  let words = []; // every word on the page, by start time: {el, start, end}
  let playing = null; // the segment element being played
  let currentWord = null; // the word element being played
  let frame = 0;

  function timed(el) {
    return { el, start: parseFloat(el.dataset.start), end: parseFloat(el.dataset.end) };
  }

  function indexSegments() {
    segments = Array.from(list.querySelectorAll(".segment")).map(timed);
    words = Array.from(list.querySelectorAll(".segment .word"))
      .map(timed)
      .filter((w) => Number.isFinite(w.start) && Number.isFinite(w.end));
    words.sort((a, b) => a.start - b.start);
  }
  indexSegments();
  // transcript-edit.js changes a segment's text (and so its words): find them again.
  list.addEventListener("segments-changed", () => {
    indexSegments();
    if (player) follow();
  });

  // Clicks and keys on a segment's own controls (edit, select, the editor) are theirs.
  function onControl(target) {
    return Boolean(
      target.closest("button, input, textarea, a, .editor, .original, .segment-error")
    );
  }

  function mark(el) {
    if (el === playing) return;
    if (playing) playing.classList.remove("playing");
    playing = el;
    if (playing) {
      playing.classList.add("playing");
      // Keep the spoken line in view without yanking the page while the user reads.
      if (!player.paused) playing.scrollIntoView({ block: "nearest", behavior: "smooth" });
    }
  }

  function markWord(el) {
    if (el === currentWord) return;
    if (currentWord) {
      currentWord.classList.remove("current-word");
      currentWord.removeAttribute("aria-current");
    }
    currentWord = el;
    if (currentWord) {
      currentWord.classList.add("current-word");
      currentWord.setAttribute("aria-current", "true");
    }
  }

  function segmentAt(time) {
    // The last segment that started at or before ``time`` and has not ended yet.
    let found = null;
    for (const segment of segments) {
      if (segment.start <= time + 0.05 && time < segment.end) found = segment;
      if (segment.start > time + 0.05) break;
    }
    return found;
  }

  function wordAt(time) {
    // Binary search: the last word starting at or before ``time``, if it has not ended.
    let low = 0;
    let high = words.length - 1;
    let found = -1;
    while (low <= high) {
      const middle = (low + high) >> 1;
      if (words[middle].start <= time) {
        found = middle;
        low = middle + 1;
      } else {
        high = middle - 1;
      }
    }
    return found >= 0 && time < words[found].end ? words[found] : null;
  }

  function followWords() {
    const word = wordAt(player.currentTime);
    markWord(word ? word.el : null);
  }

  function follow() {
    const segment = segmentAt(player.currentTime);
    mark(segment ? segment.el : null);
    followWords();
  }

  // timeupdate comes only a few times a second; while playing, every frame follows the words.
  function tick() {
    frame = 0;
    followWords();
    if (!player.paused && !player.ended) frame = requestAnimationFrame(tick);
  }

  function playFrom(time, segmentEl, wordEl) {
    player.currentTime = time;
    mark(segmentEl);
    markWord(wordEl || null);
    const started = player.play();
    // A browser may refuse to play (no audio device, autoplay policy); the seek stands.
    if (started && started.catch) started.catch(() => {});
  }

  if (player) {
    list.addEventListener("click", (event) => {
      const el = event.target.closest(".segment");
      if (!el || onControl(event.target) || el.classList.contains("editing")) return;
      const wordEl = event.target.closest(".word");
      const word = wordEl && words.find((w) => w.el === wordEl);
      if (word) {
        playFrom(word.start, el, wordEl);
        return;
      }
      const segment = segments.find((s) => s.el === el);
      if (segment) playFrom(segment.start, el, null);
    });
    list.addEventListener("keydown", (event) => {
      if (event.key !== "Enter" && event.key !== " ") return;
      if (onControl(event.target)) return;
      const el = event.target.closest(".segment");
      const segment = el && segments.find((s) => s.el === el);
      if (segment) {
        event.preventDefault();
        playFrom(segment.start, el, null);
      }
    });
    player.addEventListener("timeupdate", follow);
    player.addEventListener("seeked", follow);
    player.addEventListener("playing", () => {
      if (!frame) frame = requestAnimationFrame(tick);
    });
  }

  // --- segments that arrive while the transcript is being made ---------------------------
  function usableWords(text, items) {
    // The words show only while they still spell the text (a person may have edited it).
    if (!Array.isArray(items) || !items.length) return null;
    const ok = items.every(
      (w) => w && typeof w.word === "string" && Number.isFinite(w.start) && Number.isFinite(w.end)
    );
    if (!ok || items.map((w) => w.word).join("").trim() !== text.trim()) return null;
    return items;
  }

  function fillText(container, text, items) {
    const usable = usableWords(text, items);
    if (!usable) {
      container.textContent = text;
      return;
    }
    usable.forEach((w, i) => {
      // Spaces stay outside the word's span, so the highlight covers the word only; the
      // segment's text is stripped, as the server renders it.
      const core = w.word.trim();
      const leading = core ? w.word.slice(0, w.word.length - w.word.trimStart().length) : w.word;
      const trailing = core ? w.word.slice(w.word.trimEnd().length) : "";
      if (leading && i > 0) container.append(leading);
      if (core) {
        const span = document.createElement("span");
        span.className = "word";
        span.dataset.start = w.start.toFixed(3);
        span.dataset.end = w.end.toFixed(3);
        span.textContent = core;
        container.append(span);
      }
      if (trailing && i < usable.length - 1) container.append(trailing);
    });
  }

  function addSegment(data) {
    if (!Number.isInteger(data.index) || typeof data.text !== "string") return;
    if (document.getElementById("segment-" + data.index)) return;
    const start = Number(data.start);
    const end = Number(data.end);
    const li = document.createElement("li");
    li.className = "segment";
    li.id = "segment-" + data.index;
    li.dataset.index = String(data.index);
    li.dataset.start = start.toFixed(3);
    li.dataset.end = end.toFixed(3);
    const time = document.createElement("span");
    time.className = "time muted";
    time.textContent = start.toFixed(1) + "–" + end.toFixed(1);
    const text = document.createElement("span");
    text.className = "text";
    if (player) {
      // The text is the play button, as the server renders it.
      text.tabIndex = 0;
      text.setAttribute("role", "button");
      text.title = interpolate(gettext("Play from %s s"), [start.toFixed(1)]);
    }
    fillText(text, data.text, data.words);
    li.append(time, " ", text);
    const next = Array.from(list.querySelectorAll(".segment")).find(
      (el) => Number(el.dataset.index) > data.index
    );
    list.insertBefore(li, next || null);
    const placeholder = document.getElementById("no-segments");
    if (placeholder) placeholder.remove();
  }

  function addSegments(items) {
    items.forEach(addSegment);
    indexSegments();
    if (player) follow();
  }

  // A link from the history (#segment-3) lands on that segment, highlighted.
  if (location.hash.startsWith("#segment-")) {
    const target = document.getElementById(location.hash.slice(1));
    if (target) {
      target.classList.add("target");
      target.scrollIntoView({ block: "center" });
    }
  }

  // --- rename and delete ---------------------------------------------------------------
  const title = document.getElementById("title");
  const renameButton = document.getElementById("rename-button");
  const renameForm = document.getElementById("rename-form");
  const renameInput = document.getElementById("rename-input");

  function editing(on) {
    renameForm.hidden = !on;
    title.hidden = on;
    renameButton.hidden = on;
    if (on) renameInput.focus();
  }

  renameButton.addEventListener("click", () => editing(true));
  document.getElementById("rename-cancel").addEventListener("click", () => editing(false));
  renameForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    errorEl.hidden = true;
    const response = await fetch(apiUrl, {
      method: "PATCH",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify({ title: renameInput.value }),
      credentials: "same-origin",
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      showError(interpolate(gettext("Could not rename: %s"), [body.error || response.status]));
      return;
    }
    // A blank title shows as source and date, which the server renders: reload for it.
    if (!body.title) {
      location.reload();
      return;
    }
    title.textContent = body.title;
    document.title = body.title + " · " + gettext("Speech recognition");
    editing(false);
  });

  document.getElementById("delete-button").addEventListener("click", async () => {
    if (!window.confirm(gettext("Delete this transcript and its recording? This cannot be undone."))) return;
    const response = await fetch(apiUrl, {
      method: "DELETE",
      headers: { "X-CSRFToken": csrfToken() },
      credentials: "same-origin",
    });
    if (response.status === 204 || response.status === 404) {
      location.assign(list.dataset.historyUrl);
    } else {
      showError(interpolate(gettext("Could not delete it (HTTP %s): reload the page and try again."), [response.status]));
    }
  });

  // --- a transcription still running: follow it, reload when it is done ---------------
  const status = statusEl ? statusEl.dataset.status : "";
  if (status === "queued" || status === "running") {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + "/ws/transcripts/" + transcriptId + "/");
    const bar = document.getElementById("progress");
    socket.onmessage = (e) => {
      const event = JSON.parse(e.data);
      if (event.type === "progress" && bar) bar.value = event.progress;
      // An upload's batches of segments, and a live session's finals, as they are stored.
      if (event.type === "segments" && Array.isArray(event.segments)) addSegments(event.segments);
      if (event.type === "final" && event.segment != null && event.text) {
        const { utterance: index, start, end, text, words: items } = event;
        addSegments([{ index, start, end, text, words: items }]);
      }
      // Reload for the finished view: segments, keywords and exports from the database.
      if (event.type === "status" && (event.status === "done" || event.status === "failed")) location.reload();
      if (event.type === "keywords_summary") location.reload();
    };
  }
})();
