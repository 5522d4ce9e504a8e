// The transcript page's summary: shown as the server rendered it, then kept current. While
// it is pending or running the page follows the transcript's event stream (a "summary"
// event carries the finished one) and asks the API now and then, in case the event came
// before the stream was open. Regenerate asks for a new one. Text is only set as text.
(function () {
  "use strict";

  const section = document.getElementById("summary");
  if (!section) return;
  const $ = (id) => document.getElementById(id);
  let socket = null;
  let timer = 0;

  function fill(listId, blockId, items) {
    const list = $(listId);
    list.replaceChildren();
    for (const item of items || []) {
      const li = document.createElement("li");
      li.textContent = item;
      list.appendChild(li);
    }
    $(blockId).hidden = !(items && items.length);
  }

  function render(summary) {
    if (!summary) return;
    const busy = summary.status === "pending" || summary.status === "running";
    section.dataset.status = summary.status;
    section.dataset.backend = summary.backend || "";
    section.dataset.stale = summary.stale ? "true" : "false";
    const backend = $("summary-backend");
    backend.textContent = summary.backend ? backend.dataset[summary.backend] || summary.backend : "";
    $("summary-pending").hidden = !busy;
    $("summary-stale").hidden = !summary.stale || busy;
    $("summary-error").hidden = summary.status !== "failed";
    $("summary-error").textContent = summary.error || "";
    $("summary-text").textContent = summary.text || "";
    const none = $("summary-none");
    none.hidden = Boolean(summary.text) || busy;
    none.textContent =
      summary.status === "done" ? gettext("There was nothing to summarise.") : gettext("No summary yet.");
    fill("summary-actions", "summary-actions-block", summary.action_items);
    fill("summary-decisions", "summary-decisions-block", summary.decisions);
    if (busy) follow();
    else stopFollowing();
  }

  async function refresh() {
    try {
      const response = await fetch(section.dataset.apiUrl, { credentials: "same-origin" });
      if (response.ok) render((await response.json()).summary);
    } catch (e) {
      // The next tick or the event brings it.
    }
  }

  function follow() {
    if (!timer) timer = window.setInterval(refresh, 5000);
    if (socket) return;
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(
      scheme + location.host + "/ws/transcripts/" + section.dataset.transcript + "/"
    );
    socket.onopen = refresh;
    socket.onmessage = (e) => {
      const event = JSON.parse(e.data);
      if (event.type === "summary") render(event.summary);
    };
    socket.onclose = () => {
      socket = null;
    };
  }

  function stopFollowing() {
    if (timer) window.clearInterval(timer);
    timer = 0;
    if (socket) socket.close();
    socket = null;
  }

  async function regenerate() {
    const token = document.querySelector("[name=csrfmiddlewaretoken]");
    const error = $("summary-error");
    try {
      const response = await fetch(section.dataset.url, {
        method: "POST",
        headers: { "X-CSRFToken": token ? token.value : "" },
        credentials: "same-origin",
      });
      const body = await response.json().catch(() => ({}));
      if (response.status === 202) {
        render(body);
        return;
      }
      error.textContent =
        body.error || interpolate(gettext("Could not regenerate the summary: HTTP %s"), [response.status]);
    } catch (e) {
      error.textContent = gettext("Could not reach the server; try again in a moment.");
    }
    error.hidden = false;
  }

  $("summary-regenerate").addEventListener("click", regenerate);
  $("summary-stale-regenerate").addEventListener("click", regenerate);
  const status = section.dataset.status;
  // Expected: a transcript just finished, whose summary is requested once its keywords are
  // in; the page may have loaded before that, so it follows until the summary is written.
  if (status === "pending" || status === "running" || section.dataset.expected === "true") {
    follow();
    // Not for ever: a page left open on a transcript whose summary never came.
    window.setTimeout(() => {
      if (!["pending", "running"].includes(section.dataset.status)) stopFollowing();
    }, 15 * 60 * 1000);
  }
})();
