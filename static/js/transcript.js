// The transcript page: play from a segment, follow playback, rename, delete, and
// reload when a running transcription finishes. Text is only ever set as text.
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

  // --- the player and the segments -----------------------------------------------------
  const segments = Array.from(list.querySelectorAll(".segment")).map((el) => ({
    el,
    start: parseFloat(el.dataset.start),
    end: parseFloat(el.dataset.end),
  }));
  let playing = null;

  function mark(segment) {
    if (segment === playing) return;
    if (playing) playing.el.classList.remove("playing");
    playing = segment;
    if (playing) {
      playing.el.classList.add("playing");
      // Keep the spoken line in view without yanking the page while the user reads.
      if (!player.paused) playing.el.scrollIntoView({ block: "nearest", behavior: "smooth" });
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

  function playFrom(segment) {
    player.currentTime = segment.start;
    mark(segment);
    const started = player.play();
    // A browser may refuse to play (no audio device, autoplay policy); the seek stands.
    if (started && started.catch) started.catch(() => {});
  }

  if (player) {
    list.addEventListener("click", (event) => {
      const el = event.target.closest(".segment");
      if (!el) return;
      const segment = segments.find((s) => s.el === el);
      if (segment) playFrom(segment);
    });
    list.addEventListener("keydown", (event) => {
      if (event.key !== "Enter" && event.key !== " ") return;
      const el = event.target.closest(".segment");
      const segment = el && segments.find((s) => s.el === el);
      if (segment) {
        event.preventDefault();
        playFrom(segment);
      }
    });
    const follow = () => mark(segmentAt(player.currentTime));
    player.addEventListener("timeupdate", follow);
    player.addEventListener("seeked", follow);
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
      showError("Could not rename: " + (body.error || response.status));
      return;
    }
    // A blank title shows as source and date, which the server renders: reload for it.
    if (!body.title) {
      location.reload();
      return;
    }
    title.textContent = body.title;
    document.title = body.title + " · 음성 인식";
    editing(false);
  });

  document.getElementById("delete-button").addEventListener("click", async () => {
    if (!window.confirm("Delete this transcript and its recording? This cannot be undone.")) return;
    const response = await fetch(apiUrl, {
      method: "DELETE",
      headers: { "X-CSRFToken": csrfToken() },
      credentials: "same-origin",
    });
    if (response.status === 204 || response.status === 404) {
      location.assign(list.dataset.historyUrl);
    } else {
      showError("Could not delete: HTTP " + response.status);
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
      // Reload for the finished view: segments, keywords and exports from the database.
      if (event.type === "status" && (event.status === "done" || event.status === "failed")) location.reload();
      if (event.type === "keywords_summary") location.reload();
    };
  }
})();
