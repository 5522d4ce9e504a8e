// The status page updates itself in place every 10 seconds (or on "Refresh now"): the tables
// are swapped without a reload, so focus and a screen reader's place stay where they were.
// Only a change of the platform's state is announced (a polite status region).
(function () {
  "use strict";
  const body = document.getElementById("status-body");
  const auto = document.getElementById("auto-refresh");
  const updated = document.getElementById("updated");
  const announce = document.getElementById("status-announce");
  const PERIOD_MS = 10000;
  let timer = 0;


  async function refresh() {
    let html;
    try {
      const response = await fetch(location.href, { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (!response.ok) throw new Error(String(response.status));
      html = await response.text();
    } catch (err) {
      updated.textContent = gettext("Could not update: the server did not answer. The figures above are older; it tries again by itself.");
      return;
    }
    const doc = new DOMParser().parseFromString(html, "text/html");
    const fresh = doc.getElementById("status-body");
    if (!fresh) return;
    const before = document.getElementById("health").textContent;
    body.replaceChildren(...fresh.childNodes);
    const after = document.getElementById("health").textContent;
    if (after !== before) announce.textContent = interpolate(gettext("Platform status: %s"), [after]);
    // The server's time, in the pages' time zone like every time shown.
    const stamp = doc.getElementById("updated");
    if (stamp) updated.textContent = stamp.textContent;
  }

  function schedule() {
    clearInterval(timer);
    timer = auto.checked ? setInterval(refresh, PERIOD_MS) : 0;
  }

  document.getElementById("refresh").addEventListener("click", refresh);
  auto.addEventListener("change", schedule);
  schedule();
})();
