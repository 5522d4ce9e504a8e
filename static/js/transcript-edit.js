// The transcript page, once transcribed: correct a segment's text in place (Edit, or "e" on
// the focused text; in the editor Enter saves and Esc cancels), see the machine's original,
// resolve a conflict with someone else's correction, name speakers and assign one to a
// segment or a run of segments (Select, then shift-Select the run's end). Text is only ever
// set as text. transcript.js plays the audio; it is told when a segment's words change.
(function () {
  "use strict";

  const list = document.getElementById("segments");
  const speakersBox = document.getElementById("speakers");
  if (!list || !speakersBox) return;
  const segmentApi = list.dataset.segmentApi; // ".../segments/0/": 0 stands for the id

  function csrfToken() {
    const input = document.querySelector("[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  async function send(url, method, body) {
    let response;
    try {
      response = await fetch(url, {
        method,
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify(body),
        credentials: "same-origin",
      });
    } catch (error) {
      return { response: { ok: false, status: 0 }, data: { error: gettext("The server could not be reached; check the connection and try again.") } };
    }
    const data = await response.json().catch(() => ({}));
    return { response, data };
  }

  function failure(response, data) {
    return data.error || interpolate(gettext("Could not save (HTTP %s); try again."), [response.status]);
  }

  function segmentUrl(li) {
    return segmentApi.replace(/0\/$/, li.dataset.id + "/");
  }

  function number(li) {
    return Number(li.dataset.index) + 1;
  }

  function showSegmentError(li, message) {
    const box = li.querySelector(".segment-error");
    box.textContent = message || "";
    box.hidden = !message;
  }

  // --- correcting a segment's text ------------------------------------------------------

  function applySegment(li, data) {
    li.dataset.version = String(data.version);
    const text = li.querySelector(".text");
    // The corrected text no longer matches the words' timings: shown as plain text.
    text.textContent = data.text;
    li.classList.toggle("edited", Boolean(data.edited));
    li.querySelector(".edited-mark").hidden = !data.edited;
    li.querySelector(".show-original").hidden = !data.edited;
    li.querySelector(".original-text").textContent = data.original_text || "";
    list.dispatchEvent(new CustomEvent("segments-changed"));
  }

  function closeEditor(li, refocus) {
    const editor = li.querySelector(".editor");
    if (editor) editor.remove();
    li.querySelector(".text").hidden = false;
    li.classList.remove("editing");
    showSegmentError(li, "");
    if (refocus) li.querySelector(".edit-segment").focus();
  }

  async function save(li, text, version) {
    const area = li.querySelector(".segment-editor");
    if (area) area.setAttribute("aria-busy", "true");
    const { response, data } = await send(segmentUrl(li), "PATCH", { text, version: Number(version) });
    if (area) area.removeAttribute("aria-busy");
    if (response.ok) {
      applySegment(li, data);
      closeEditor(li, true);
      return;
    }
    if (response.status === 409 && data.code === "version_conflict") {
      showConflict(li, data, text);
      return;
    }
    showSegmentError(li, failure(response, data));
  }

  function showConflict(li, theirs, mine) {
    const editor = li.querySelector(".editor");
    if (!editor) return;
    const old = editor.querySelector(".conflict");
    if (old) old.remove();
    const box = document.createElement("div");
    box.className = "conflict";
    box.setAttribute("role", "alert");
    const who = theirs.edited_by || gettext("Someone else");
    const note = document.createElement("p");
    note.textContent = interpolate(gettext("%s corrected this segment while you were editing it. Their text:"), [who]);
    const quote = document.createElement("blockquote");
    quote.className = "theirs";
    quote.textContent = theirs.text;
    const keep = document.createElement("button");
    keep.type = "button";
    keep.className = "primary keep-mine";
    keep.textContent = gettext("Keep mine");
    keep.addEventListener("click", () => save(li, li.querySelector(".segment-editor").value, theirs.version));
    const take = document.createElement("button");
    take.type = "button";
    take.className = "take-theirs";
    take.textContent = gettext("Take theirs");
    take.addEventListener("click", () => {
      applySegment(li, theirs);
      closeEditor(li, true);
    });
    box.append(note, quote, keep, " ", take);
    editor.append(box);
    keep.focus();
  }

  function openEditor(li) {
    if (li.classList.contains("editing")) return;
    list.querySelectorAll(".segment.editing").forEach((other) => closeEditor(other, false));
    const text = li.querySelector(".text");
    li.classList.add("editing");
    text.hidden = true;
    const editor = document.createElement("div");
    editor.className = "editor";
    const area = document.createElement("textarea");
    area.className = "segment-editor";
    area.rows = 2;
    area.maxLength = 2000;
    area.value = text.textContent.trim();
    area.setAttribute("aria-label", interpolate(gettext("Corrected text of segment %s"), [number(li)]));
    const hint = document.createElement("p");
    hint.className = "muted editor-hint";
    hint.id = "editor-hint-" + li.dataset.index;
    hint.textContent = gettext("Enter saves, Esc cancels.");
    area.setAttribute("aria-describedby", hint.id);
    area.addEventListener("keydown", (event) => {
      // Enter that ends a Korean syllable's composition is the input method's, not a save.
      if (event.isComposing || event.keyCode === 229) return;
      if (event.key === "Enter") {
        event.preventDefault();
        save(li, area.value, li.dataset.version);
      } else if (event.key === "Escape") {
        event.preventDefault();
        closeEditor(li, true);
      }
    });
    editor.append(area, hint);
    text.after(editor);
    area.focus();
    area.setSelectionRange(area.value.length, area.value.length);
  }

  list.addEventListener("click", (event) => {
    const li = event.target.closest(".segment");
    if (!li) return;
    if (event.target.closest(".edit-segment")) {
      openEditor(li);
    } else if (event.target.closest(".show-original")) {
      const button = event.target.closest(".show-original");
      const original = li.querySelector(".original");
      original.hidden = !original.hidden;
      button.setAttribute("aria-expanded", String(!original.hidden));
      button.textContent = original.hidden ? gettext("Show original") : gettext("Hide original");
    } else if (event.target.closest(".select-segment")) {
      select(li, event.shiftKey);
    }
  });

  list.addEventListener("keydown", (event) => {
    // "e" on a segment's focused text opens its editor, as the Edit button does.
    if (event.key === "e" && !event.ctrlKey && !event.metaKey && !event.altKey && event.target.matches(".segment .text")) {
      event.preventDefault();
      openEditor(event.target.closest(".segment"));
    }
    // Shift+Enter on Select extends the run, as a shift-click does.
    if (event.key === "Enter" && event.target.matches(".select-segment")) {
      event.preventDefault();
      select(event.target.closest(".segment"), event.shiftKey);
    }
  });

  // --- speakers -------------------------------------------------------------------------

  const speakerList = document.getElementById("speaker-list");
  const options = document.getElementById("speaker-options");
  const assignForm = document.getElementById("assign-form");
  const nameInput = document.getElementById("assign-name");
  const assignButton = document.getElementById("assign-button");
  const unassignButton = document.getElementById("unassign-button");
  const selectionNote = document.getElementById("selection");
  const speakerError = document.getElementById("speaker-error");
  const selectionHint = selectionNote.textContent;
  let anchor = null;
  let run = null; // {first, last}: segment indexes, both included

  function showSpeakerError(message) {
    speakerError.textContent = message || "";
    speakerError.hidden = !message;
  }

  function segmentsIn(first, last) {
    return Array.from(list.querySelectorAll(".segment")).filter((li) => {
      const index = Number(li.dataset.index);
      return index >= first && index <= last;
    });
  }

  function showSelection() {
    list.querySelectorAll(".segment").forEach((li) => {
      const index = Number(li.dataset.index);
      const chosen = run !== null && index >= run.first && index <= run.last;
      li.classList.toggle("selected", chosen);
      li.querySelector(".select-segment").setAttribute("aria-pressed", String(chosen));
    });
    if (run === null) {
      selectionNote.textContent = selectionHint;
    } else if (run.first === run.last) {
      selectionNote.textContent = interpolate(gettext("Segment %s selected."), [run.first + 1]);
    } else {
      selectionNote.textContent = interpolate(gettext("Segments %s to %s selected."), [run.first + 1, run.last + 1]);
    }
    assignButton.disabled = run === null;
    unassignButton.disabled = run === null;
  }

  function select(li, extend) {
    const index = Number(li.dataset.index);
    if (extend && anchor !== null) {
      run = { first: Math.min(anchor, index), last: Math.max(anchor, index) };
    } else if (run !== null && run.first === index && run.last === index) {
      run = null; // a second press on the one selected segment clears it
      anchor = null;
    } else {
      anchor = index;
      run = { first: index, last: index };
    }
    showSelection();
  }

  function speakerName(speaker) {
    return speaker.name || speaker.label;
  }

  function showSpeakerOn(li, speaker) {
    const label = li.querySelector(".speaker-name");
    li.dataset.speaker = speaker ? String(speaker.id) : "";
    label.textContent = speaker ? speakerName(speaker) : "";
    label.hidden = !speaker;
  }

  function listSpeaker(speaker) {
    let item = speakerList.querySelector('li[data-id="' + speaker.id + '"]');
    if (!item) {
      item = document.createElement("li");
      item.dataset.id = String(speaker.id);
      const form = document.createElement("form");
      form.className = "rename-speaker";
      const input = document.createElement("input");
      input.type = "text";
      input.name = "name";
      input.maxLength = 100;
      const button = document.createElement("button");
      button.type = "submit";
      button.className = "link";
      button.textContent = gettext("Rename");
      form.append(input, " ", button);
      item.append(form);
      speakerList.append(item);
    }
    const input = item.querySelector("input");
    input.value = speakerName(speaker);
    input.setAttribute("aria-label", interpolate(gettext("Name of speaker %s"), [speakerName(speaker)]));
    options.replaceChildren(
      ...Array.from(speakerList.querySelectorAll("input")).map((field) => {
        const option = document.createElement("option");
        option.value = field.value;
        return option;
      })
    );
  }

  async function assign(body) {
    showSpeakerError("");
    if (run === null) return;
    const { response, data } = await send(speakersBox.dataset.assignUrl, "POST", { ...body, first: run.first, last: run.last });
    if (!response.ok) {
      showSpeakerError(failure(response, data));
      return;
    }
    if (data.speaker) listSpeaker(data.speaker);
    segmentsIn(run.first, run.last).forEach((li) => showSpeakerOn(li, data.speaker));
  }

  assignForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const name = nameInput.value.trim();
    if (!name) {
      showSpeakerError(gettext("Type a speaker's name, or pick one from the list."));
      nameInput.focus();
      return;
    }
    assign({ name });
  });
  unassignButton.addEventListener("click", () => assign({ speaker: null }));

  speakerList.addEventListener("submit", async (event) => {
    event.preventDefault();
    const item = event.target.closest("li");
    const input = item.querySelector("input");
    showSpeakerError("");
    const url = speakersBox.dataset.url + item.dataset.id + "/";
    const { response, data } = await send(url, "PATCH", { name: input.value });
    if (!response.ok) {
      showSpeakerError(failure(response, data));
      return;
    }
    listSpeaker(data);
    list.querySelectorAll('.segment[data-speaker="' + data.id + '"]').forEach((li) => showSpeakerOn(li, data));
  });
})();
