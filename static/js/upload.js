// Upload page: one job per file. Upload progress from XHR, then transcription progress and
// segments over the transcript's WebSocket; the REST detail fills in what the socket missed.
(function () {
  "use strict";
  const input = document.getElementById("file-input");
  const zone = document.getElementById("drop-zone");
  const jobs = document.getElementById("jobs");
  const template = document.getElementById("job-template");
  const form = document.getElementById("upload-form");
  const maxBytes = Number(form.dataset.maxMb) * 1024 * 1024;

  function csrfToken() {
    const match = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : form.querySelector("[name=csrfmiddlewaretoken]").value;
  }

  function fmt(seconds) {
    const m = Math.floor(seconds / 60), s = (seconds % 60).toFixed(1).padStart(4, "0");
    return m + ":" + s;
  }

  const STATE_LABELS = {
    uploading: gettext("uploading"),
    queued: gettext("queued"),
    running: gettext("running"),
    done: gettext("done"),
    failed: gettext("failed"),
  };

  class Job {
    constructor(file) {
      this.file = file;
      this.el = template.content.firstElementChild.cloneNode(true);
      this.el.querySelector(".job-name").textContent = file.name;
      this.state = this.el.querySelector(".job-state");
      this.uploadBar = this.el.querySelector(".upload-bar");
      this.sttBar = this.el.querySelector(".stt-bar");
      this.pct = this.el.querySelector(".stt-pct");
      this.list = this.el.querySelector(".segments");
      this.error = this.el.querySelector(".job-error");
      this.link = this.el.querySelector(".job-link");
      this.seen = new Set();
      this.finished = false;
      jobs.prepend(this.el);
    }

    // data-state keeps the machine's word (tests use it); the text shown is translated.
    setState(state) { this.state.textContent = STATE_LABELS[state] || state; this.el.dataset.state = state; }

    fail(message) {
      this.finished = true;
      this.error.textContent = message;
      this.error.hidden = false;
      this.setState("failed");
    }

    start() {
      if (this.file.size > maxBytes) {
        this.fail(interpolate(gettext("This file is larger than the upload limit of %s MB."), [form.dataset.maxMb]));
        return;
      }
      const data = new FormData();
      data.append("file", this.file);
      data.append("language", document.getElementById("language").value);
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/api/transcripts/");
      xhr.setRequestHeader("X-CSRFToken", csrfToken());
      xhr.upload.onprogress = (e) => { if (e.lengthComputable) this.uploadBar.value = e.loaded / e.total; };
      xhr.onerror = () => this.fail(gettext("The upload was interrupted; check the connection and try again."));
      xhr.onload = () => {
        let body = {};
        try { body = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
        if (xhr.status !== 202) {
          this.fail(body.error || interpolate(gettext("The server refused the upload (HTTP %s): try again in a minute; if it keeps happening, tell the administrator."), [xhr.status]));
          return;
        }
        this.uploadBar.value = 1;
        this.id = body.id;
        this.detailUrl = body.url;
        this.link.href = "/transcripts/" + body.id + "/";
        this.link.hidden = false;
        this.setState("queued");
        this.watch();
      };
      this.setState("uploading");
      xhr.send(data);
    }

    watch() {
      const scheme = location.protocol === "https:" ? "wss://" : "ws://";
      this.socket = new WebSocket(scheme + location.host + "/ws/transcripts/" + this.id + "/");
      this.socket.onmessage = (e) => this.onEvent(JSON.parse(e.data));
      this.socket.onopen = () => this.refresh();
      this.socket.onclose = () => { if (!this.finished) setTimeout(() => this.refresh(), 1000); };
      // A slow poll covers a socket that never opens or an event lost in between.
      this.poll = setInterval(() => this.refresh(), 3000);
    }

    async refresh() {
      if (this.finished) return;
      const response = await fetch(this.detailUrl, { credentials: "same-origin" });
      if (!response.ok) return;
      const body = await response.json();
      this.addSegments(body.segments || []);
      this.onEvent({ type: "progress", progress: body.progress });
      this.onEvent({ type: "status", status: body.status, error: body.error });
    }

    addSegments(segments) {
      for (const s of segments) {
        if (this.seen.has(s.index)) continue;
        this.seen.add(s.index);
        const li = document.createElement("li");
        li.className = "segment";
        li.dataset.index = s.index;
        const time = document.createElement("span");
        time.className = "time muted";
        time.textContent = fmt(s.start) + "–" + fmt(s.end) + " ";
        const text = document.createElement("span");
        text.className = "text";
        text.textContent = s.text;  // always as text, never as HTML
        li.append(time, text);
        const after = [...this.list.children].find((x) => Number(x.dataset.index) > s.index);
        this.list.insertBefore(li, after || null);
      }
    }

    onEvent(event) {
      if (event.type === "segments") this.addSegments(event.segments);
      else if (event.type === "progress" && typeof event.progress === "number") {
        this.sttBar.value = Math.max(this.sttBar.value, event.progress);
        this.pct.textContent = Math.round(this.sttBar.value * 100) + "%";
      } else if (event.type === "status") {
        if (event.status === "failed") this.fail(event.error || gettext("Transcription failed: upload the file again, or save it in another format (wav, mp3, m4a) first."));
        else if (event.status === "done") {
          this.sttBar.value = 1;
          this.pct.textContent = "100%";
          this.setState("done");
          if (!this.finished) { this.finished = true; this.refreshFinal(); }
        } else this.setState(event.status);
      }
    }

    async refreshFinal() {
      clearInterval(this.poll);
      const body = await (await fetch(this.detailUrl, { credentials: "same-origin" })).json();
      this.addSegments(body.segments || []);
      if (this.socket) this.socket.close();
    }
  }

  function add(files) { for (const f of files) new Job(f).start(); }
  input.addEventListener("change", () => { add(input.files); input.value = ""; });
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => { e.preventDefault(); zone.classList.remove("over"); add(e.dataTransfer.files); });
})();
