// Reordering a team's backlog (templates/stories/team_detail.html), for members who may edit it.
//
// A story is dragged by its handle with Pointer Events, so a mouse, a pen and a finger all work
// (HTML5 drag and drop does not on most touch screens). With the keyboard, Space or Enter on the
// handle picks the story up, the arrow keys move it, Space or Enter drops it, Escape cancels.
// Each drop is one POST of the story's new 1-based position to the row's move URL, the endpoint
// of the up/down buttons (which keep working without this script). The answer is the backlog's
// new order; a refusal (no right to edit the backlog any more, the story deleted meanwhile)
// puts the row back where it was and says why.
"use strict";

(() => {
  const gettext = window.gettext || ((s) => s);
  // Django's named placeholders, "%(name)s", as its JavaScript catalogue's interpolate() reads them.
  const format = (text, values) => text.replace(/%\((\w+)\)s/g, (_, key) => String(values[key]));

  const list = document.querySelector("ol.story-list[data-reorderable]");
  if (!list) return;
  const announcer = document.getElementById("announcer");
  const csrfField = document.querySelector("input[name=csrfmiddlewaretoken]");
  const MIN_DRAG_PX = 4; // less than this between press and release is a click, not a drag
  const EDGE_PX = 40; // dragging this close to the window's top or bottom scrolls it

  const notice = document.createElement("p");
  notice.id = "reorder-notice";
  notice.className = "message";
  notice.setAttribute("role", "alert");
  notice.hidden = true;
  list.before(notice);

  let busy = false; // a move is being saved: no other starts until it is answered
  let grabbed = null; // keyboard: { row, from }
  let drag = null; // pointer: { row, handle, from, pointerId, startY, indicator }

  const rows = () => [...list.querySelectorAll(":scope > li.story")];
  const handleOf = (row) => row.querySelector(".drag-handle");
  const storyId = (row) => row.id.replace(/^story-/, "");
  const place = (row) => ({
    title: row.querySelector(".story-title").textContent.trim(),
    position: rows().indexOf(row) + 1,
    count: rows().length,
  });

  for (const handle of list.querySelectorAll(".drag-handle")) {
    handle.hidden = false;
    handle.setAttribute("aria-pressed", "false");
  }

  function announce(text) {
    if (!announcer) return;
    // Emptied first, so that the same sentence twice in a row is read twice.
    announcer.textContent = "";
    window.requestAnimationFrame(() => {
      announcer.textContent = text;
    });
  }

  function showNotice(text, isError) {
    notice.textContent = text;
    notice.classList.toggle("error", isError);
    notice.hidden = false;
  }

  function hideNotice() {
    notice.hidden = true;
    notice.textContent = "";
  }

  // The up/down buttons of the first and last rows do nothing; keep them disabled as rows move.
  function refreshButtons() {
    const all = rows();
    all.forEach((row, index) => {
      const up = row.querySelector("button[name=direction][value=up]");
      const down = row.querySelector("button[name=direction][value=down]");
      if (up) up.disabled = index === 0;
      if (down) down.disabled = index === all.length - 1;
    });
  }

  // Put ``row`` at ``index`` among the other rows, keeping focus on its handle if it had it.
  function placeAt(row, index) {
    const focused = row.contains(document.activeElement);
    const others = rows().filter((r) => r !== row);
    list.insertBefore(row, others[index] || null);
    if (focused) handleOf(row).focus();
    refreshButtons();
  }

  async function save(row, from) {
    const to = rows().indexOf(row);
    busy = true;
    list.setAttribute("aria-busy", "true");
    let order = null;
    let refusal = null;
    try {
      const response = await fetch(row.dataset.moveUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { Accept: "application/json", "X-CSRFToken": csrfField ? csrfField.value : "" },
        body: new URLSearchParams({ position: String(to + 1) }),
      });
      const isJson = (response.headers.get("Content-Type") || "").includes("application/json");
      const data = isJson ? await response.json() : null;
      if (response.ok && data && Array.isArray(data.order)) order = data.order;
      // A refusal of the server says why; anything else (a login page, a proxy's error) does not.
      else refusal = (data && data.detail) || gettext("The new order could not be saved. Reload the page and try again.");
    } catch {
      refusal = gettext("The new order could not be saved. Reload the page and try again.");
    } finally {
      busy = false;
      list.removeAttribute("aria-busy");
    }
    if (refusal) {
      placeAt(row, from);
      showNotice(refusal, true);
      return;
    }
    if (!follow(order, row)) {
      showNotice(gettext("The backlog was changed elsewhere meanwhile: reload the page to see all of it."), false);
    }
    announce(format(gettext("%(title)s moved to position %(position)s of %(count)s."), place(row)));
  }

  // Show the server's order, which also holds moves others made meanwhile; false if it names
  // stories this page does not have (or lacks some), which only a reload shows.
  function follow(order, moved) {
    const byId = new Map(rows().map((row) => [storyId(row), row]));
    if (order.length !== byId.size || !order.every((id) => byId.has(id))) return false;
    if (order.join() !== [...byId.keys()].join()) {
      const focused = moved.contains(document.activeElement);
      for (const id of order) list.append(byId.get(id));
      if (focused) handleOf(moved).focus();
      refreshButtons();
    }
    return true;
  }

  // --- the keyboard ---------------------------------------------------------------------------

  function pickUp(row) {
    hideNotice();
    grabbed = { row, from: rows().indexOf(row) };
    row.classList.add("grabbed");
    handleOf(row).setAttribute("aria-pressed", "true");
    announce(
      format(
        gettext("%(title)s picked up, position %(position)s of %(count)s. Move it with the arrow keys, drop it with Space, cancel with Escape."),
        place(row),
      ),
    );
  }

  function release() {
    const { row, from } = grabbed;
    grabbed = null;
    row.classList.remove("grabbed");
    handleOf(row).setAttribute("aria-pressed", "false");
    return { row, from };
  }

  function step(delta) {
    const { row } = grabbed;
    // The neighbour moves rather than the row: the focused handle never leaves the page.
    const neighbour = delta < 0 ? row.previousElementSibling : row.nextElementSibling;
    if (neighbour && neighbour.matches("li.story")) {
      if (delta < 0) row.after(neighbour);
      else row.before(neighbour);
      refreshButtons();
    }
    announce(format(gettext("%(title)s, position %(position)s of %(count)s."), place(row)));
  }

  function drop() {
    const { row, from } = release();
    if (rows().indexOf(row) === from) {
      announce(format(gettext("%(title)s moved to position %(position)s of %(count)s."), place(row)));
      return;
    }
    save(row, from);
  }

  function cancel(refocus) {
    const { row, from } = release();
    placeAt(row, from);
    if (refocus) handleOf(row).focus();
    announce(format(gettext("Move cancelled: %(title)s is back at position %(position)s of %(count)s."), place(row)));
  }

  list.addEventListener("keydown", (event) => {
    const handle = event.target instanceof Element ? event.target.closest(".drag-handle") : null;
    if (!handle) return;
    const row = handle.closest("li.story");
    if (event.key === " " || event.key === "Enter") {
      event.preventDefault();
      if (busy || drag) return;
      if (!grabbed) pickUp(row);
      else if (grabbed.row === row) drop();
    } else if (grabbed && grabbed.row === row) {
      if (event.key === "ArrowUp" || event.key === "ArrowDown") {
        event.preventDefault();
        step(event.key === "ArrowUp" ? -1 : 1);
      } else if (event.key === "Escape") {
        event.preventDefault();
        cancel(true);
      }
    }
  });

  // Tabbing away from a story that is picked up puts it back.
  list.addEventListener("focusout", (event) => {
    if (grabbed && event.target === handleOf(grabbed.row) && event.relatedTarget !== null) {
      cancel(false);
    }
  });

  // --- the pointer ----------------------------------------------------------------------------

  const others = () => rows().filter((row) => row !== drag.row);

  // Where the dragged row would go among the others: before the first whose middle is below y.
  function targetIndex(y) {
    const rest = others();
    const index = rest.findIndex((row) => {
      const box = row.getBoundingClientRect();
      return y < box.top + box.height / 2;
    });
    return index === -1 ? rest.length : index;
  }

  function startDrag() {
    hideNotice();
    drag.indicator = document.createElement("li");
    drag.indicator.className = "drop-indicator";
    drag.indicator.setAttribute("aria-hidden", "true");
    drag.row.classList.add("moving");
    list.classList.add("dragging");
  }

  function endDrag() {
    const ended = drag;
    drag = null;
    if (ended.indicator) {
      ended.indicator.remove();
      ended.row.classList.remove("moving");
      list.classList.remove("dragging");
    }
    return ended;
  }

  list.addEventListener("pointerdown", (event) => {
    const handle = event.target instanceof Element ? event.target.closest(".drag-handle") : null;
    if (!handle || busy || grabbed || drag || !event.isPrimary || event.button !== 0) return;
    event.preventDefault(); // no text selection while dragging
    handle.setPointerCapture(event.pointerId);
    const row = handle.closest("li.story");
    drag = { row, handle, from: rows().indexOf(row), pointerId: event.pointerId, startY: event.clientY, indicator: null };
  });

  list.addEventListener("pointermove", (event) => {
    if (!drag || event.pointerId !== drag.pointerId) return;
    if (!drag.indicator) {
      if (Math.abs(event.clientY - drag.startY) < MIN_DRAG_PX) return;
      startDrag();
    }
    event.preventDefault();
    if (event.clientY < EDGE_PX) window.scrollBy(0, -EDGE_PX / 2);
    else if (event.clientY > window.innerHeight - EDGE_PX) window.scrollBy(0, EDGE_PX / 2);
    const rest = others();
    list.insertBefore(drag.indicator, rest[targetIndex(event.clientY)] || null);
  });

  list.addEventListener("pointerup", (event) => {
    if (!drag || event.pointerId !== drag.pointerId) return;
    const dragged = Boolean(drag.indicator);
    const target = dragged ? targetIndex(event.clientY) : null;
    const { row, handle, from } = endDrag();
    handle.focus(); // the moved row keeps the focus, for a keyboard move next
    if (!dragged) return;
    placeAt(row, target);
    if (target !== from) save(row, from);
  });

  for (const type of ["pointercancel", "lostpointercapture"]) {
    list.addEventListener(type, (event) => {
      // After pointerup the drag is over already; this is a drag the browser took away.
      if (drag && event.pointerId === drag.pointerId) endDrag();
    });
  }

  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && drag) endDrag();
  });
})();
