// The live table: one socket, one state object, DOM rendering with textContent only (names and
// titles are user input, so no server string ever goes through innerHTML).
// Protocol: rooms/protocol.py and docs/protocol.md. The page carries no game state; the snapshot
// sent on connect (and on request after a version gap) makes the client whole.

// Texts: Django's JavaScript catalogue (/jsi18n/, loaded before this module) defines gettext,
// ngettext and interpolate in the page's language; `format` fills a translated
// text's %(name)s fields.
const format = (text, values) => interpolate(text, values, true);

// Not changes of the table: applied whatever their version (docs/protocol.md).
// rooms/protocol.py UNVERSIONED_EVENTS (rooms/tests/test_protocol.py keeps the two the same).
const UNVERSIONED = new Set([
  "snapshot", "presence_changed", "members_changed", "team_renamed", "table_paused",
  "table_resumed", "session_ended",
]);
// Close codes after which reconnecting cannot help (rooms/protocol.py CLOSE_*).
const FINAL_CLOSE = {
  4401: gettext("Your session has ended."),
  4403: gettext("You are not a member of this team."),
  4404: gettext("This team does not exist."),
};
// Roles are sent as their names (voter, observer, facilitator); shown in the page's language.
const ROLE_NAMES = {
  voter: gettext("voter"),
  observer: gettext("observer"),
  facilitator: gettext("facilitator"),
};
const roleName = (role) => ROLE_NAMES[role] || role;
// The heartbeat (docs/protocol.md, `ping`): a silent network drop shows within about
// HEARTBEAT + TIMEOUT; the pong's version says whether events were lost.
const HEARTBEAT_MS = Number(document.getElementById("table").dataset.heartbeatMs) || 15000;
const HEARTBEAT_TIMEOUT_MS =
  Number(document.getElementById("table").dataset.heartbeatTimeoutMs) || 10000;
const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 15000;
const TOAST_MS = 6000;
const CARD_LABELS = { "?": gettext("? (not sure)"), "☕": gettext("☕ (I need a break)") };

const root = document.getElementById("table");
const $ = (id) => document.getElementById(id);
const ui = {
  connection: $("connection"),
  connText: document.querySelector("#connection .conn-text"),
  connCount: document.querySelector("#connection .conn-count"),
  loginLink: document.querySelector("#connection .conn-login"),
  role: $("my-role"),
  paused: $("paused"),
  roundEyebrow: $("round-eyebrow"),
  roundKey: $("round-key"),
  roundText: $("round-text"),
  roundStatus: $("round-status"),
  participants: $("participants"),
  handSection: $("hand-section"),
  hand: $("hand"),
  handHint: $("hand-hint"),
  deckName: $("deck-name"),
  observerNote: $("observer-note"),
  results: $("results"),
  stats: $("stats"),
  distribution: $("distribution"),
  suggestion: $("suggestion"),
  accepted: $("accepted"),
  toast: $("toast"),
  controls: $("controls"),
  acceptForm: $("accept-form"),
  acceptValue: $("accept-value"),
  acceptBtn: $("accept-btn"),
  acceptNextBtn: $("accept-next-btn"),
  revealBtn: $("reveal-btn"),
  restartBtn: $("restart-btn"),
  nextBtn: $("next-btn"),
  startForm: $("start-form"),
  storySelect: $("story-select"),
  startBtn: $("start-btn"),
  quickForm: $("quick-form"),
  quickTitle: $("quick-title"),
  quickBtn: $("quick-btn"),
  deckSelect: $("deck-select"),
  endSessionBtn: $("end-session-btn"),
  backlog: $("backlog"),
  backlogCount: $("backlog-count"),
  announcer: $("announcer"),
};

// Other scripts of the table (static/rooms/rounds.js, loaded after this one) extend it through
// window.pokerTable: ``hooks.event`` handlers get the events this module does not know (return
// true when the state changed), ``hooks.render`` handlers run after every render; both get the
// state. A global rather than an ES import: the hashed static file names would make an import
// load this module a second time (a second socket).
const hooks = { event: [], render: [] };

// --- state ---------------------------------------------------------------------------------

let state = null; // null until the first snapshot
const pending = new Map(); // request_id -> {type, roundId} of commands awaiting their answer
const requestPrefix = Math.random().toString(36).slice(2, 8);
let requestSeq = 0;
let snapshotPending = false;
let heartbeatTimer = null;
let heartbeatDeadline = null;
// The card this member asked for whose answer has not come yet (null: none; "" a withdrawal).
// It is shown as pending, and sent again after a reconnect if the round is still on.
let voteIntent = null;

function fromSnapshot(frame) {
  const d = frame.data;
  return {
    version: frame.version,
    team: d.team,
    me: d.me,
    deck: d.deck,
    decks: d.decks,
    participants: d.participants,
    round: d.round,
    voted: new Set(d.round ? d.round.voted : []),
    myVote: d.my_vote,
    backlog: d.backlog,
    settings: d.settings || {},
    paused: state ? state.paused : null,
  };
}

// --- element helpers -----------------------------------------------------------------------

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

function formatNumber(n) {
  if (n === null || n === undefined) return "–";
  return Number.isInteger(n) ? String(n) : String(Math.round(n * 100) / 100);
}

let toastTimer = null;
// The status line stays in the page (a live region must exist before it speaks); empty = invisible.
function toast(message, kind = "info") {
  ui.toast.textContent = message;
  ui.toast.dataset.kind = kind;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    ui.toast.textContent = "";
  }, TOAST_MS);
}

// --- connection ----------------------------------------------------------------------------

let socket = null;
let attempt = 0;
let retryTimer = null;
let countdownTimer = null;
let stopped = false; // the page is going away
let refused = false; // the server closed with a final code: reconnecting cannot help
// The server said the team's database cannot be reached (`shard_unavailable`): the page says so
// until a heartbeat or a snapshot goes through again, then asks for the table.
const UNAVAILABLE_TEXT = gettext("The team's database cannot be reached: retrying…");
let unavailable = false;

function setConnection(status, text, { login = false } = {}) {
  root.dataset.connection = status;
  ui.connection.dataset.connection = status;
  if (ui.connText.textContent !== text) ui.connText.textContent = text;
  ui.connCount.textContent = "";
  ui.loginLink.hidden = !login;
}

function isLive() {
  return socket !== null && socket.readyState === WebSocket.OPEN && state !== null;
}

function connect() {
  clearTimeout(retryTimer);
  clearInterval(countdownTimer);
  if (!navigator.onLine) {
    setConnection("offline", gettext("Offline: waiting for the network…"));
    return;
  }
  if (attempt === 0) setConnection("connecting", gettext("Connecting…"));
  else setConnection("reconnecting", gettext("Reconnecting…"));
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${location.host}${root.dataset.wsPath}`);
  socket = ws;
  ws.addEventListener("message", (event) => {
    if (ws !== socket) return;
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    onFrame(frame);
  });
  ws.addEventListener("close", (event) => {
    if (ws === socket) onClose(event);
  });
}

function stopHeartbeat() {
  clearInterval(heartbeatTimer);
  clearTimeout(heartbeatDeadline);
  heartbeatTimer = heartbeatDeadline = null;
}

function startHeartbeat() {
  stopHeartbeat();
  heartbeatTimer = setInterval(() => {
    if (heartbeatDeadline !== null) return; // the last one is still on its way
    if (send("ping", {}, { quiet: true }) === null) return;
    heartbeatDeadline = setTimeout(connectionIsDead, HEARTBEAT_TIMEOUT_MS);
  }, HEARTBEAT_MS);
}

function connectionIsDead() {
  // No answer: the network dropped silently (a socket never learns it by itself). Give up on
  // this socket and reconnect; its close handshake may never complete.
  const dead = socket;
  if (dead === null) return;
  socket = null;
  try {
    dead.close(4000);
  } catch {
    // closing a socket that cannot send is fine
  }
  onClose({ code: 1006 });
}

function onClose(event) {
  socket = null;
  stopHeartbeat();
  // Commands that were not answered: a vote is sent again once connected, the rest are told.
  for (const command of pending.values()) {
    if (!["ping", "get_snapshot", "cast_vote", "withdraw_vote"].includes(command.type)) {
      const text = gettext('The connection dropped before "%(command)s" was confirmed: try again.');
      toast(format(text, { command: command.type.replace("_", " ") }), "error");
    }
  }
  pending.clear();
  snapshotPending = false;
  render();
  if (stopped) return;
  const final = FINAL_CLOSE[event.code];
  if (final) {
    refused = true;
    const login = event.code === 4401;
    setConnection("offline", final, { login });
    return;
  }
  scheduleReconnect();
}

function scheduleReconnect() {
  // Full jitter: a random delay up to an exponentially growing cap spreads a herd of clients
  // reconnecting after a server restart.
  const delay = Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
  attempt += 1;
  const due = Date.now() + delay;
  setConnection("reconnecting", unavailable ? UNAVAILABLE_TEXT : gettext("Connection lost: reconnecting"));
  // The countdown is visual only (aria-hidden) so screen readers are not told every second.
  const tick = () => {
    const seconds = Math.max(1, Math.ceil((due - Date.now()) / 1000));
    ui.connCount.textContent = format(ngettext("in %(seconds)ss…", "in %(seconds)ss…", seconds), { seconds });
  };
  tick();
  countdownTimer = setInterval(tick, 1000);
  retryTimer = setTimeout(connect, delay);
}

window.addEventListener("online", () => {
  if (socket === null && !stopped && !refused) connect();
});
window.addEventListener("offline", () => {
  if (socket !== null || refused) return; // an open socket notices by itself when it drops
  clearTimeout(retryTimer);
  clearInterval(countdownTimer);
  setConnection("offline", gettext("Offline: waiting for the network…"));
});
window.addEventListener("pagehide", () => {
  stopped = true;
  stopHeartbeat();
  clearTimeout(retryTimer);
  clearInterval(countdownTimer);
  if (socket) socket.close(1000);
});
window.addEventListener("pageshow", (event) => {
  // Back from the back/forward cache: the old socket is gone, start afresh.
  if (event.persisted) {
    stopped = false;
    attempt = 0;
    connect();
  }
});

function send(type, data = {}, { quiet = false } = {}) {
  if (socket === null || socket.readyState !== WebSocket.OPEN) {
    if (!quiet) toast(gettext("Not connected: the command was not sent."), "error");
    return null;
  }
  requestSeq += 1;
  const requestId = `${requestPrefix}-${requestSeq}`;
  pending.set(requestId, { type, roundId: state && state.round ? state.round.id : null });
  socket.send(JSON.stringify({ type, request_id: requestId, data }));
  return requestId;
}

function requestSnapshot() {
  if (snapshotPending) return;
  // Quiet: when the socket is closing, the next connection starts with a snapshot anyway.
  if (send("get_snapshot", {}, { quiet: true }) !== null) snapshotPending = true;
}

// --- inbound frames ------------------------------------------------------------------------

function onFrame(frame) {
  switch (frame.type) {
    case "ack":
      onAck(frame);
      return;
    case "error":
      onError(frame);
      return;
    case "snapshot":
      state = fromSnapshot(frame);
      snapshotPending = false;
      unavailable = false;
      attempt = 0;
      clearInterval(countdownTimer);
      setConnection("live", gettext("Live"));
      startHeartbeat();
      resendVoteIntent();
      render();
      return;
    default:
      if (state === null) return; // the snapshot always comes first on a new socket
      if (applyEvent(frame)) render();
  }
}

function hasPending(type) {
  for (const command of pending.values()) if (command.type === type) return true;
  return false;
}

function takePending(requestId) {
  const command = pending.get(requestId) || { type: null, roundId: null };
  pending.delete(requestId);
  if (command.type === "get_snapshot") snapshotPending = false;
  return command;
}

function resendVoteIntent() {
  // A card clicked while the connection was failing: play it now, if its round is still on.
  if (voteIntent === null || !state.round || state.round.status !== "voting") {
    voteIntent = null;
    return;
  }
  if (voteIntent.roundId !== state.round.id) {
    voteIntent = null;
    return;
  }
  if (voteIntent.value === "") send("withdraw_vote", {}, { quiet: true });
  else if (state.myVote !== voteIntent.value) send("cast_vote", { value: voteIntent.value }, { quiet: true });
  else voteIntent = null;
}

function onAck(frame) {
  const command = takePending(frame.request_id);
  if (command.type === "ping") {
    clearTimeout(heartbeatDeadline);
    heartbeatDeadline = null;
    if (unavailable) {
      // The database answers again: whatever happened meanwhile, take the table afresh.
      unavailable = false;
      setConnection("live", gettext("Live"));
      requestSnapshot();
      return;
    }
    // The table in the database is ahead of what we applied: events were lost on the way.
    if (state !== null && frame.version > state.version) requestSnapshot();
    return;
  }
  if (command.type === "cast_vote" || command.type === "withdraw_vote") voteIntent = null;
  // Our own card: only the ack tells it (events never carry a value before reveal). Ignore an
  // ack that arrives after the round it was for has been replaced.
  if (state === null || !state.round || state.round.id !== command.roundId) return;
  if (command.type === "cast_vote") {
    state.myVote = frame.data.value;
    render();
  } else if (command.type === "withdraw_vote") {
    state.myVote = null;
    render();
  }
}

function onError(frame) {
  const command = takePending(frame.request_id);
  if (frame.code === "shard_unavailable") {
    // The socket is alive (the server answered); the team's database is not. Keep the card
    // clicked as an intent: it is played again with the next snapshot if its round is still on.
    if (command.type === "ping") {
      clearTimeout(heartbeatDeadline);
      heartbeatDeadline = null;
    }
    unavailable = true;
    setConnection("unavailable", UNAVAILABLE_TEXT);
    if (command.type === "ping" || command.type === null) return;
    toast(`${errorText(frame)} (${frame.code})`, "error");
    render();
    return;
  }
  if (command.type === "cast_vote" || command.type === "withdraw_vote") voteIntent = null;
  toast(`${errorText(frame)} (${frame.code})`, "error");
  render(); // puts back form values (the deck picker) that the refused command had changed
}

// A refusal as the server words it: in the page's language (the socket's language is the
// page's: its cookie, else Accept-Language), and it may say more than the code, such as which
// role may not do what.
function errorText(frame) {
  return frame.message || frame.code;
}

// Return whether the state changed.
function applyEvent(event) {
  const { type, data } = event;
  if (type === "table_paused" || type === "table_resumed") {
    state.paused = type === "table_paused" ? data.reason || "maintenance" : null;
    if (type === "table_resumed") requestSnapshot(); // the team may now live on another shard
    return true;
  }
  if (!UNVERSIONED.has(type)) {
    if (event.version <= state.version) return false; // already in our state
    if (event.version > state.version + 1) {
      requestSnapshot(); // we missed something
      return false;
    }
    state.version = event.version;
  }
  switch (type) {
    case "presence_changed":
      state.participants = data.participants;
      break;
    case "members_changed":
      // Someone's role changed, joined or left: ours may be different now.
      requestSnapshot();
      return false;
    case "round_started":
      state.round = data.round;
      state.voted = new Set(data.round.voted);
      state.myVote = null;
      break;
    case "vote_cast":
      state.voted.add(data.user_id);
      // Our own vote from another tab: only a snapshot tells this tab which card it was.
      if (data.user_id === state.me.user_id && !hasPending("cast_vote")) requestSnapshot();
      break;
    case "vote_withdrawn":
      state.voted.delete(data.user_id);
      if (data.user_id === state.me.user_id) state.myVote = null;
      break;
    case "cards_revealed":
      state.round = data.round;
      state.voted = new Set(data.round.voted);
      break;
    case "estimate_accepted":
      if (state.round && state.round.id === data.round_id) {
        state.round = { ...state.round, estimate: data.estimate, status: "accepted" };
      }
      if (Array.isArray(data.backlog)) {
        state.backlog = data.backlog;
      } else if (data.story_id !== null) {
        state.backlog = state.backlog.map((s) =>
          s.id === data.story_id ? { ...s, estimate: data.estimate } : s,
        );
      }
      break;
    case "deck_changed":
      // The table's deck, and the team's decks when one was added, edited or deleted.
      state.deck = data.deck;
      if (Array.isArray(data.decks)) state.decks = data.decks;
      break;
    case "backlog_changed":
      state.backlog = data.backlog;
      break;
    case "table_session_ended":
      // Notifications e-mail the session's summary to the members who opted in.
      toast(gettext("The session has ended: its summary is on its way."), "info");
      break;
    default:
      // An event of another module of the table, or one this page does not know (the version
      // is kept, nothing to draw).
      return hooks.event.some((handle) => handle(event, state));
  }
  return true;
}

// --- rendering -----------------------------------------------------------------------------

function storyOf(id) {
  return id === null || id === undefined ? null : state.backlog.find((s) => s.id === id) || null;
}

function render() {
  if (state === null) return;
  const { round, me } = state;
  const status = round ? round.status : "none";
  const isFacilitator = me.role === "facilitator";
  const isObserver = me.role === "observer";
  root.dataset.roundStatus = status;
  root.dataset.role = me.role;
  ui.role.textContent = roleName(me.role);
  ui.role.className = `badge role-${me.role}`;
  ui.paused.hidden = !state.paused;
  ui.paused.textContent = state.paused
    ? format(gettext("The table is paused (%(reason)s); it resumes shortly."), { reason: state.paused })
    : "";

  renderRound(status);
  renderParticipants(status);
  ui.handSection.hidden = isObserver;
  ui.observerNote.hidden = !isObserver;
  if (!isObserver) renderHand(status);
  renderResults(status, isFacilitator);
  ui.controls.hidden = !isFacilitator;
  if (isFacilitator) renderControls(status);
  renderBacklog();
  for (const handle of hooks.render) handle(state);
}

function renderRound(status) {
  const { round } = state;
  const story = round ? storyOf(round.story_id) : null;
  ui.roundKey.textContent = story && story.external_key ? story.external_key : "";
  ui.roundText.textContent = round ? round.title || gettext("Quick round") : gettext("No round yet");
  ui.roundEyebrow.textContent = round ? gettext("Current round") : gettext("The table is open");
  // "X of Y": the voters at the table (present, playing cards, not sitting out) and how many of
  // them have voted; absent members are not waited for.
  const present = state.participants.filter(
    (p) => p.online && (p.voting === undefined ? p.role !== "observer" : p.voting),
  );
  const votedHere = present.filter((p) => state.voted.has(p.user_id)).length;
  const count = { voted: votedHere, total: present.length };
  const labels = {
    none: gettext("Waiting to start"),
    voting: format(ngettext("Voting · %(voted)s of %(total)s voted", "Voting · %(voted)s of %(total)s voted", votedHere), count),
    revealed: gettext("Revealed"),
    accepted: format(gettext("Estimated: %(estimate)s"), { estimate: round && round.estimate }),
    cancelled: gettext("Cancelled"),
  };
  ui.roundStatus.textContent = labels[status] || status;
  ui.roundStatus.dataset.status = status;
  announce({ roundId: round ? round.id : null, status, voted: votedHere, of: present.length });
}

// --- announcements (screen readers) --------------------------------------------------------
// One polite live region says what changed at the table: a round starts, the vote count moves,
// the cards are revealed (with the result), an estimate is accepted. Derived from the state
// before and after a render, so it says the same whether an event or a snapshot brought it.
let lastSeen = null;
function announce(now) {
  const before = lastSeen;
  lastSeen = now;
  if (before === null) return; // the page just loaded: nothing happened yet
  const { round } = state;
  let text = "";
  const voted = () =>
    format(ngettext("%(voted)s of %(total)s voted.", "%(voted)s of %(total)s voted.", now.voted), {
      voted: now.voted,
      total: now.of,
    });
  if (now.status === "voting" && (now.roundId !== before.roundId || before.status !== "voting")) {
    const title = round.title || gettext("Quick round");
    text = `${format(gettext("Round started: %(title)s."), { title })} ${voted()}`;
  } else if (now.status === "voting" && (now.voted !== before.voted || now.of !== before.of)) {
    text = voted();
  } else if (now.status === "revealed" && before.status !== "revealed") {
    const stats = round.stats || {};
    const votes = stats.votes ?? 0;
    const parts = [format(ngettext("Cards revealed: %(count)s vote", "Cards revealed: %(count)s votes", votes), { count: votes })];
    if (stats.suggestion) parts.push(format(gettext("suggested estimate %(estimate)s"), { estimate: stats.suggestion }));
    if (stats.consensus) parts.push(gettext("consensus"));
    text = `${parts.join(", ")}.`;
  } else if (now.status === "accepted" && before.status !== "accepted") {
    text = format(gettext("Estimate accepted: %(estimate)s."), { estimate: round.estimate });
  }
  if (text) ui.announcer.textContent = text;
}

function renderParticipants(status) {
  const revealed = status === "revealed" || status === "accepted";
  const votes = revealed && state.round.votes ? state.round.votes : [];
  const values = new Map(votes.map((v) => [v.user_id, v.value]));
  const seats = state.participants.map((p) => {
    const mine = p.user_id === state.me.user_id;
    const voted = state.round !== null && state.voted.has(p.user_id);
    let card;
    let said;
    if (p.role === "observer") {
      card = el("span", { className: "seat-card observer", "aria-hidden": "true" }, eyeIcon());
      said = gettext("observing");
    } else if (revealed && values.has(p.user_id)) {
      const value = values.get(p.user_id);
      card = el("span", { className: "seat-card face-up", text: value });
      said = gettext("voted");
    } else if (voted) {
      // Face down. Only the voter's own page knows the value before reveal.
      card = el("span", { className: `seat-card face-down${mine && state.myVote ? " mine" : ""}` });
      if (mine && state.myVote) card.append(el("span", { className: "mine-value", text: state.myVote }));
      said = gettext("has voted");
    } else {
      card = el("span", { className: "seat-card empty", "aria-hidden": "true" });
      if (status === "voting") said = gettext("has not voted yet");
      else if (revealed) said = gettext("did not vote");
      else said = "";
    }
    const name = el(
      "span",
      { className: "seat-name" },
      el("span", { className: "presence", title: p.online ? gettext("online") : gettext("offline"), "aria-hidden": "true" }),
      el("span", { className: "seat-label", text: p.name }),
    );
    const extras = el(
      "span",
      { className: "seat-meta" },
      el("span", { className: `badge role-${p.role}`, text: roleName(p.role) }),
      // Joined through the guest link, without an account: the name is theirs to choose.
      p.guest ? el("span", { className: "badge guest", text: gettext("guest") }) : null,
      mine ? el("span", { className: "you", text: gettext("you") }) : null,
      el("span", {
        className: "sr-only",
        text: [p.online ? gettext("online") : gettext("offline"), said].filter(Boolean).join(", "),
      }),
    );
    return el(
      "li",
      {
        className: `seat${p.online ? "" : " offline"}${mine ? " me" : ""}`,
        dataset: {
          userId: String(p.user_id),
          online: String(p.online),
          voted: String(voted),
          role: p.role,
          guest: String(Boolean(p.guest)),
        },
      },
      card,
      name,
      extras,
    );
  });
  ui.participants.replaceChildren(...seats);
}

function eyeIcon() {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", "eye");
  const outline = document.createElementNS(ns, "path");
  outline.setAttribute("d", "M1.5 12S5.5 5 12 5s10.5 7 10.5 7-4 7-10.5 7S1.5 12 1.5 12z");
  const pupil = document.createElementNS(ns, "circle");
  pupil.setAttribute("cx", "12");
  pupil.setAttribute("cy", "12");
  pupil.setAttribute("r", "3");
  svg.append(outline, pupil);
  return svg;
}

let handSignature = null;
function renderHand(status) {
  const cards = state.round ? state.round.cards : state.deck.cards;
  const deckKey = state.round ? state.round.deck : state.deck.key;
  const deck = state.decks.find((d) => d.key === deckKey);
  ui.deckName.textContent = deck ? `· ${deck.name}` : "";
  const signature = cards.join("\u0000");
  if (signature !== handSignature) {
    // Rebuild only when the cards change, so the button the user just pressed keeps its focus.
    handSignature = signature;
    ui.hand.replaceChildren(
      ...cards.map((value) =>
        el("button", {
          type: "button",
          className: "play-card",
          dataset: { value },
          "aria-label": format(gettext("Vote %(card)s"), { card: CARD_LABELS[value] || value }),
          "aria-pressed": "false",
          text: value,
        }),
      ),
    );
  }
  const voting = status === "voting";
  const live = isLive();
  const intent = voteIntent && state.round && voteIntent.roundId === state.round.id ? voteIntent : null;
  for (const button of ui.hand.children) {
    const selected = state.myVote === button.dataset.value && voting;
    button.setAttribute("aria-pressed", String(selected));
    // Clicked, not yet confirmed: shown as such until the ack (or sent again after a reconnect).
    const waiting = intent !== null && intent.value === button.dataset.value && voting;
    button.classList.toggle("pending", waiting);
    button.setAttribute("aria-busy", String(waiting));
    button.disabled = !voting || !live;
  }
  const hints = {
    none: gettext("Waiting for the facilitator to start a round."),
    voting: intent && intent.value
      ? format(gettext("Sending %(card)s…"), { card: intent.value })
      : state.myVote
      ? format(
        gettext("You played %(card)s. Pick another card to change it, or the same one to take it back."),
        { card: state.myVote },
      )
      : gettext("Pick a card. Nobody sees it until the cards are revealed."),
    revealed: gettext("The cards are revealed."),
    accepted: gettext("The estimate is recorded."),
  };
  ui.handHint.textContent = hints[status] || "";
}

ui.hand.addEventListener("click", (event) => {
  const button = event.target.closest("button.play-card");
  if (!button || button.disabled || state === null) return;
  const value = button.dataset.value;
  const roundId = state.round ? state.round.id : null;
  if (state.myVote === value) {
    voteIntent = { value: "", roundId };
    send("withdraw_vote", {}, { quiet: true });
  } else {
    voteIntent = { value, roundId };
    if (send("cast_vote", { value }, { quiet: true }) === null) {
      toast(gettext("Not connected: your card is played as soon as the connection is back."), "info");
    }
  }
  render();
});

function renderResults(status, isFacilitator) {
  const { round } = state;
  const stats = round && round.stats;
  const show = (status === "revealed" || status === "accepted") && !!stats;
  ui.results.hidden = !show;
  if (!show) return;
  const tiles = [
    ["votes", gettext("Votes"), String(stats.votes)],
    ["mean", gettext("Mean"), formatNumber(stats.mean)],
    // An ordinal deck (sizes) has no numeric median: its median card, by the deck's order.
    ["median", gettext("Median"), stats.median == null && stats.median_card ? stats.median_card : formatNumber(stats.median)],
    ["mode", gettext("Mode"), stats.mode.length ? stats.mode.join(", ") : "–"],
    ["range", gettext("Min – max"), stats.min === null ? "–" : `${stats.min} – ${stats.max}`],
    ["spread", gettext("Spread"), formatNumber(stats.spread)],
    ["consensus", gettext("Consensus"), stats.consensus ? gettext("Yes") : gettext("No")],
  ];
  ui.stats.replaceChildren(
    ...tiles.map(([key, label, value]) =>
      el("div", { className: "tile", dataset: { stat: key } },
        el("dt", { text: label }),
        el("dd", { text: value }),
      ),
    ),
  );
  const entries = Object.entries(stats.distribution || {});
  const top = Math.max(1, ...entries.map(([, count]) => count));
  ui.distribution.replaceChildren(
    ...entries.map(([card, count]) => {
      const bar = el("span", { className: "bar" }, el("span", { className: "bar-fill" }));
      bar.style.setProperty("--share", `${(count / top) * 100}%`);
      return el(
        "div",
        { className: `dist-row${stats.mode.includes(card) ? " top" : ""}`, dataset: { card } },
        el("span", { className: "mini-card", text: card }),
        bar,
        el("span", { className: "count", text: format(ngettext("%(count)s vote", "%(count)s votes", count), { count }) }),
      );
    }),
  );
  ui.suggestion.replaceChildren(
    `${gettext("Suggested estimate")} `,
    el("strong", { className: "estimate", text: stats.suggestion || "–" }),
  );
  if (stats.consensus) {
    ui.suggestion.append(el("span", { className: "consensus", text: ` · ${gettext("consensus!")}` }));
  }
  ui.accepted.hidden = status !== "accepted";
  if (status === "accepted") {
    ui.accepted.replaceChildren(
      `${gettext("Accepted estimate")} `,
      el("strong", { className: "estimate", text: round.estimate }),
    );
  }
  ui.acceptForm.hidden = !isFacilitator;
}

let acceptPrefilledFor = null;
function renderControls(status) {
  const { round } = state;
  const live = isLive();
  const voting = status === "voting";
  const finished = status === "revealed" || status === "accepted";
  const todo = state.backlog.filter((s) => !s.estimate);

  ui.acceptForm.hidden = !finished;
  if (finished) {
    const key = `${round.id}:${status}`;
    if (acceptPrefilledFor !== key) {
      acceptPrefilledFor = key;
      ui.acceptValue.value = round.estimate || (round.stats && round.stats.suggestion) || "";
    }
  }
  ui.acceptBtn.disabled = !live || !finished;
  ui.acceptNextBtn.disabled = !live || !finished;
  ui.acceptNextBtn.hidden = round === null || round.story_id === null;
  ui.revealBtn.disabled = !live || !voting;
  ui.restartBtn.disabled = !live || round === null;
  ui.nextBtn.disabled = !live || voting || todo.length === 0;

  renderStorySelect(todo);
  ui.storySelect.disabled = !live || voting || state.backlog.length === 0;
  ui.startBtn.disabled = ui.storySelect.disabled;
  ui.quickTitle.disabled = !live || voting;
  ui.quickBtn.disabled = !live || voting;

  const deckOptions = state.decks.map((d) => el("option", { value: d.key, text: d.name }));
  const deckSig = state.decks.map((d) => d.key).join(",");
  if (ui.deckSelect.dataset.sig !== deckSig) {
    ui.deckSelect.replaceChildren(...deckOptions);
    ui.deckSelect.dataset.sig = deckSig;
  }
  ui.deckSelect.value = state.deck.key;
  ui.deckSelect.disabled = !live || voting;
  ui.deckSelect.title = voting ? gettext("Change the deck between rounds") : "";
}

function renderStorySelect(todo) {
  const previous = ui.storySelect.value;
  const done = state.backlog.filter((s) => s.estimate);
  const label = (s) => `${s.external_key ? `${s.external_key} · ` : ""}${s.title}`;
  const groups = [];
  if (todo.length) {
    groups.push(
      el(
        "optgroup",
        { label: gettext("To estimate") },
        ...todo.map((s) => el("option", { value: s.id, text: label(s) })),
      ),
    );
  }
  if (done.length) {
    groups.push(
      el(
        "optgroup",
        { label: gettext("Estimated") },
        ...done.map((s) => el("option", { value: s.id, text: `${label(s)} (${s.estimate})` })),
      ),
    );
  }
  if (!groups.length) groups.push(el("option", { value: "", text: gettext("The backlog is empty") }));
  ui.storySelect.replaceChildren(...groups);
  if (previous && state.backlog.some((s) => String(s.id) === previous)) ui.storySelect.value = previous;
}

function renderBacklog() {
  const current = state.round ? state.round.story_id : null;
  const todo = state.backlog.filter((s) => !s.estimate).length;
  ui.backlogCount.textContent = state.backlog.length
    ? format(ngettext("%(todo)s of %(total)s to estimate", "%(todo)s of %(total)s to estimate", todo), {
      todo,
      total: state.backlog.length,
    })
    : "";
  if (!state.backlog.length) {
    ui.backlog.replaceChildren(el("li", { className: "muted empty", text: gettext("No stories yet.") }));
    return;
  }
  ui.backlog.replaceChildren(
    ...state.backlog.map((s) =>
      el(
        "li",
        {
          className: `mini-story${s.id === current ? " current" : ""}`,
          dataset: { storyId: String(s.id), estimate: s.estimate || "" },
          "aria-current": s.id === current ? "step" : null,
        },
        el(
          "span",
          { className: "mini-story-text" },
          s.external_key ? el("span", { className: "key", text: `${s.external_key} ` }) : null,
          el("span", { text: s.title }),
        ),
        s.estimate
          ? el("span", { className: "estimate", title: gettext("Accepted estimate"), text: s.estimate })
          : el("span", { className: "estimate none", title: gettext("Not estimated yet"), text: "–" }),
      ),
    ),
  );
}

// --- controls ------------------------------------------------------------------------------

ui.revealBtn.addEventListener("click", () => send("reveal_cards"));
ui.restartBtn.addEventListener("click", () => send("restart_round"));
ui.nextBtn.addEventListener("click", () => send("next_story"));
ui.startForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const id = ui.storySelect.value;  // story ids are UUID strings
  if (id) send("start_round", { story_id: id });
});
ui.quickForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const title = ui.quickTitle.value.trim();
  if (send("start_round", title ? { title } : {}) !== null) ui.quickTitle.value = "";
});
ui.deckSelect.addEventListener("change", () => send("set_deck", { deck: ui.deckSelect.value }));
ui.endSessionBtn.addEventListener("click", () => {
  if (window.confirm(gettext("End the session? Its summary is sent to the members who asked for it."))) {
    send("end_session");
  }
});
function accept(next) {
  const value = ui.acceptValue.value.trim();
  if (!value) {
    toast(gettext("Type the estimate to accept."), "error");
    ui.acceptValue.focus();
    return;
  }
  send("accept_estimate", next ? { value, next: true } : { value });
}
ui.acceptForm.addEventListener("submit", (event) => {
  event.preventDefault();
  accept(false);
});
ui.acceptNextBtn.addEventListener("click", () => accept(true));

window.pokerTable = { hooks, send, render: () => render(), format, roleName };
connect();

// --- keyboard shortcuts ---------------------------------------------------------------------
// 1–9 and 0 play the n-th card (0 the tenth); R reveals and N starts the next round (the next
// story, or the chosen one) for the facilitator. Never while typing in a field, nor with a
// modifier (the browser's own shortcuts stay).
function typingIn(target) {
  return target instanceof HTMLElement &&
    (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
}

document.addEventListener("keydown", (event) => {
  if (state === null || event.ctrlKey || event.metaKey || event.altKey || typingIn(event.target)) return;
  const key = event.key.toLowerCase();
  if (/^[0-9]$/.test(key)) {
    const index = key === "0" ? 9 : Number(key) - 1;
    const button = ui.hand.children[index];
    if (button && !ui.handSection.hidden && !button.disabled) {
      event.preventDefault();
      button.click();
      button.focus();
    }
    return;
  }
  if (state.me.role !== "facilitator") return;
  let target = null;
  if (key === "r") target = ui.revealBtn;
  else if (key === "n") target = !ui.nextBtn.disabled ? ui.nextBtn : ui.startBtn;
  if (target && !target.disabled) {
    event.preventDefault();
    target.click();
  }
});
