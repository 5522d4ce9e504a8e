// The transcript page's tools: find in the transcript (only the segments holding the words
// stay shown, with a count; Enter goes to the next one, Escape clears) and copy the whole
// text. Segments are read from the page when used, so added or corrected ones count too.
(function () {
  "use strict";
  const list = document.getElementById("segments");
  const find = document.getElementById("find");
  const count = document.getElementById("find-count");
  const copyButton = document.getElementById("copy-text");
  const copyDone = document.getElementById("copy-done");
  if (!list || !find) return;

  const allSegments = () => Array.from(list.querySelectorAll(".segment"));
  const textOf = (segment) => {
    const text = segment.querySelector(".text");
    return (text ? text.textContent : "").replace(/\s+/g, " ").trim();
  };
  let found = [];
  let current = -1;

  function apply() {
    const query = find.value.replace(/\s+/g, " ").trim().toLocaleLowerCase();
    const segments = allSegments();
    found = [];
    current = -1;
    for (const segment of segments) {
      const hit = !query || textOf(segment).toLocaleLowerCase().includes(query);
      segment.hidden = !hit;
      segment.classList.toggle("found", Boolean(query) && hit);
      segment.classList.remove("found-current");
      if (query && hit) found.push(segment);
    }
    if (!query) {
      count.textContent = "";
    } else {
      count.textContent = interpolate(
        ngettext("%s of %s segment", "%s of %s segments", segments.length),
        [found.length, segments.length]
      );
    }
  }

  function next(step) {
    if (!found.length) return;
    if (current >= 0) found[current].classList.remove("found-current");
    current = (current + step + found.length) % found.length;
    const segment = found[current];
    segment.classList.add("found-current");
    segment.scrollIntoView({ block: "center" });
  }

  let timer = 0;
  find.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(apply, 120);
  });
  find.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      clearTimeout(timer);
      if (current < 0) apply();
      next(event.shiftKey ? -1 : 1);
    } else if (event.key === "Escape") {
      find.value = "";
      apply();
    }
  });
  // The browser's own clear button on a search field.
  find.addEventListener("search", apply);

  async function copyText() {
    const lines = allSegments().map(textOf).filter(Boolean);
    const text = lines.join("\n");
    try {
      await navigator.clipboard.writeText(text);
    } catch (err) {
      // No clipboard API (plain http on another host): a selected, hidden field and copy.
      const area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "visually-hidden";
      document.body.append(area);
      area.select();
      const ok = document.execCommand("copy");
      area.remove();
      if (!ok) {
        copyDone.textContent = gettext("Could not copy: select the text and press Ctrl+C (⌘C on a Mac).");
        return;
      }
    }
    copyDone.textContent = interpolate(
      ngettext("Copied %s segment.", "Copied %s segments.", lines.length),
      [lines.length]
    );
  }
  if (copyButton) copyButton.addEventListener("click", copyText);
})();
