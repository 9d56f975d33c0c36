// Presence-aware rounds at the live table: the round timer (counting down to the server's
// deadline), auto-reveal, sitting out, managing members from their seat, and the reveal's card
// flip with the lowest and highest cards marked. Extends static/rooms/table.js through
// window.pokerTable (its hooks); renders with textContent only, like it.
// Protocol: rooms/protocol.py and docs/protocol.md.

const table = window.pokerTable;
// Texts through Django's JavaScript catalogue (gettext), filled by table.js's `format`.
const { format, roleName } = table;
const $ = (id) => document.getElementById(id);
const ui = {
  timer: $("round-timer"),
  sitOut: $("sit-out"),
  autoReveal: $("auto-reveal"),
  timerForm: $("timer-form"),
  timerSeconds: $("timer-seconds"),
  timerAutoReveal: $("timer-auto-reveal"),
  timerStart: $("timer-start-btn"),
  timerExtend: $("timer-extend-btn"),
  timerStop: $("timer-stop-btn"),
  participants: $("participants"),
  teamName: $("team-name"),
};
const ROLES = ["voter", "observer", "facilitator"];
const FLIP_MS = 700;

let current = null; // the table's state, as the last render saw it
// The timer shown: its round and the local time (performance.now) it ends at. Counted from the
// server's remaining_ms, so a wrong clock on this device does not change the countdown.
let countdown = null;
let tick = null;
let flippedRound = null;
let flipUntil = 0;
let openMenu = null; // the user id whose member menu is open, kept across renders

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "className") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// --- events --------------------------------------------------------------------------------

table.hooks.event.push((event, state) => {
  const { type, data } = event;
  if (type === "timer_changed") {
    if (state.round && state.round.id === data.round_id) {
      state.round = { ...state.round, timer: data.timer };
      countdown = null; // counted again from this event's remaining_ms
    }
    return true;
  }
  if (type === "team_renamed") {
    state.team = data.team;
    return true;
  }
  if (type === "table_settings_changed") {
    state.settings = { ...state.settings, ...data };
    return true;
  }
  if (type === "voting_changed") {
    state.participants = state.participants.map((p) =>
      p.user_id === data.user_id ? { ...p, voting: data.voting } : p,
    );
    return true;
  }
  return false;
});

// --- the timer -----------------------------------------------------------------------------

function formatLeft(ms) {
  const total = Math.ceil(ms / 1000);
  const minutes = Math.floor(total / 60);
  const seconds = String(total % 60).padStart(2, "0");
  return `${minutes}:${seconds}`;
}

function showTimer() {
  const timer = current && current.round && current.round.status === "voting" ? current.round.timer : null;
  if (!timer) {
    countdown = null;
    clearInterval(tick);
    tick = null;
    ui.timer.hidden = true;
    ui.timer.textContent = "";
    delete ui.timer.dataset.state;
    return;
  }
  if (countdown === null || countdown.roundId !== current.round.id || countdown.endsAt !== timer.ends_at) {
    countdown = {
      roundId: current.round.id,
      endsAt: timer.ends_at,
      until: performance.now() + timer.remaining_ms,
      autoReveal: timer.auto_reveal,
    };
  }
  const left = Math.max(0, countdown.until - performance.now());
  ui.timer.hidden = false;
  ui.timer.dataset.state = left > 0 ? (left <= 10000 ? "ending" : "running") : "over";
  const label = left > 0 ? formatLeft(left) : gettext("Time is up");
  ui.timer.textContent = countdown.autoReveal && left > 0
    ? `⏱ ${format(gettext("%(time)s · auto-reveal"), { time: label })}`
    : `⏱ ${label}`;
  ui.timer.setAttribute(
    "aria-label",
    left > 0 ? format(gettext("%(time)s left"), { time: formatLeft(left) }) : gettext("Time is up"),
  );
  if (tick === null) tick = setInterval(showTimer, 250);
}

// --- after every render --------------------------------------------------------------------

let timerDefault = null; // the default last put in the timer's field

// The team's name in the heading and the window title, after a rename (team_renamed, or the
// snapshot of a socket that was away).
function showTeamName(team) {
  const shown = ui.teamName.textContent;
  if (!team || team.name === shown) return;
  document.title = document.title.replace(shown, team.name);
  ui.teamName.textContent = team.name;
}

table.hooks.render.push((state) => {
  current = state;
  showTeamName(state.team);
  const { me, round, settings } = state;
  const status = round ? round.status : "none";
  const voting = status === "voting";
  const isFacilitator = me.role === "facilitator";
  const mine = state.participants.find((p) => p.user_id === me.user_id);

  showTimer();

  // Sitting out: for those whose role plays cards.
  ui.sitOut.checked = mine ? mine.voting === false : false;
  ui.sitOut.closest("label").hidden = me.role === "observer";

  if (isFacilitator) {
    ui.autoReveal.checked = !!settings.auto_reveal;
    // The team's default length (its settings page); the facilitator may type another.
    if (settings.timer_default_seconds && settings.timer_default_seconds !== timerDefault) {
      timerDefault = settings.timer_default_seconds;
      ui.timerSeconds.value = timerDefault;
    }
    const timer = voting ? round.timer : null;
    ui.timerStart.disabled = !voting;
    ui.timerStart.textContent = timer ? gettext("Restart timer") : gettext("Start timer");
    ui.timerExtend.disabled = !timer;
    ui.timerStop.disabled = !timer;
  }

  decorateSeats(state, status, isFacilitator);
});

function decorateSeats(state, status, isFacilitator) {
  const revealed = (status === "revealed" || status === "accepted") && state.round.stats;
  const stats = revealed ? state.round.stats : null;
  const values = new Map((revealed && state.round.votes ? state.round.votes : []).map((v) => [v.user_id, v.value]));
  // The cards turn over once, on the render that first shows them face up.
  if (revealed && flippedRound !== state.round.id) {
    flippedRound = state.round.id;
    flipUntil = performance.now() + FLIP_MS;
  }
  const flipping = revealed && performance.now() < flipUntil;
  // The extremes mean something only when the cards differ.
  const spread = stats && stats.min !== null && stats.min !== stats.max;

  for (const seat of ui.participants.children) {
    const userId = Number(seat.dataset.userId);
    const person = state.participants.find((p) => p.user_id === userId);
    if (!person) continue;
    const card = seat.querySelector(".seat-card");
    if (person.voting === false && person.role !== "observer") {
      seat.classList.add("sitting-out");
      seat.querySelector(".seat-meta").append(el("span", { className: "sits-out", text: gettext("not voting") }));
    }
    if (card && card.classList.contains("face-up")) {
      if (flipping) card.classList.add("flip");
      const value = values.get(userId);
      if (spread && value === stats.min) mark(seat, card, "low", gettext("lowest"), gettext("lowest card"));
      else if (spread && value === stats.max) mark(seat, card, "high", gettext("highest"), gettext("highest card"));
    }
    if (isFacilitator && userId !== state.me.user_id) seat.append(memberMenu(person));
  }
}

function mark(seat, card, kind, shown, said) {
  card.classList.add(kind);
  seat.dataset.extreme = kind;
  seat.append(el("span", { className: `extreme ${kind}`, text: shown }));
  const sr = seat.querySelector(".sr-only");
  if (sr) sr.textContent = `${sr.textContent}, ${said}`;
}

// --- managing a member from their seat (facilitators) ---------------------------------------

function memberMenu(person) {
  const menu = el(
    "details",
    { className: "member-menu", dataset: { userId: String(person.user_id) }, open: openMenu === person.user_id },
    el("summary", { "aria-label": format(gettext("Manage %(name)s"), { name: person.name }), text: gettext("Manage") }),
  );
  menu.addEventListener("toggle", () => {
    if (menu.open) openMenu = person.user_id;
    else if (openMenu === person.user_id) openMenu = null;
  });
  const role = el("select", {
    "aria-label": format(gettext("Role of %(name)s"), { name: person.name }),
    className: "member-role",
  });
  for (const name of ROLES) {
    role.append(el("option", { value: name, text: roleName(name), selected: name === person.role }));
  }
  role.addEventListener("change", () => {
    table.send("set_role", { user_id: person.user_id, role: role.value });
  });
  const sitOut = el("button", {
    type: "button",
    className: "secondary member-voting",
    text: person.voting === false ? gettext("Let vote") : gettext("Not voting"),
    "aria-label": format(
      person.voting === false ? gettext("Let %(name)s vote") : gettext("%(name)s does not vote"),
      { name: person.name },
    ),
    hidden: person.role === "observer",
  });
  sitOut.addEventListener("click", () => {
    table.send("set_voting", { user_id: person.user_id, voting: person.voting === false });
  });
  const remove = el("button", {
    type: "button",
    className: "danger member-remove",
    text: gettext("Remove"),
    "aria-label": format(gettext("Remove %(name)s from the team"), { name: person.name }),
  });
  remove.addEventListener("click", () => {
    openMenu = null;
    table.send("remove_member", { user_id: person.user_id });
  });
  menu.append(el("div", { className: "member-actions" }, role, sitOut, remove));
  return menu;
}

// --- controls ------------------------------------------------------------------------------

ui.sitOut.addEventListener("change", () => {
  if (table.send("set_voting", { voting: !ui.sitOut.checked }) === null) table.render();
});
ui.autoReveal.addEventListener("change", () => {
  if (table.send("set_auto_reveal", { enabled: ui.autoReveal.checked }) === null) table.render();
});
ui.timerForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const seconds = Number.parseInt(ui.timerSeconds.value, 10);
  const data = { auto_reveal: ui.timerAutoReveal.checked };
  if (Number.isFinite(seconds)) data.seconds = seconds;
  table.send("start_timer", data);
});
ui.timerExtend.addEventListener("click", () => table.send("extend_timer", { seconds: 30 }));
ui.timerStop.addEventListener("click", () => table.send("stop_timer"));
