// The reference web client. Plain JavaScript against the public API only, so frontend teams can
// read it as a recipe: log in, list conversations, start, leave and delete them, read and write
// messages, and stay live over the WebSocket API (docs/realtime.md). Nothing from the API is ever
// put in innerHTML: every string goes in through textContent or an attribute, so a message cannot
// inject markup.
//
// Stable hooks for tests (tests/browser/web_client.rs uses them; keep them when restyling):
//   #app-view[data-screen=list|thread]   #back   #live[data-state=connecting|open|reconnecting|offline]
//   #connection[data-state] (hidden while live)   #reconnect-now   #toast   #announcer[aria-live]
//   #total-unread[data-unread][data-threads]   #total-mentions[data-mentions] (hidden at 0)
//   #sidebar[data-view=main|archived]   #show-archived (above the chats) > #archived-count
//   #archived-bar > #archived-back (while the archived chats are listed)
//   #threads li.thread[data-thread-id][data-unread][data-mentions][data-muted][data-archived][data-owner]
//     > button.open > .title-line > .title, .muted-icon; .preview, .badges > .mention-badge, .badge
//     (.muted: grey), time.when; and button.row-menu (its options; a right-click or a long press too)
//   #thread-view > #thread-title, #thread-muted-icon, #thread-archived, #thread-muted ("Muted until …"),
//     #thread-menu-button   #pane (scrolls)
//   #thread-menu (the options of the open chat or of one in the list) > #mute-thread, #unmute-thread
//     (> #unmute-until), #archive-thread, #unarchive-thread, #leave-thread, #delete-thread;
//     #mute-options > #mute-back, button.mute-for[data-for=1h|8h|1d|always]
//   #mention-list (the @-completion) > li.mention-option[data-user-id][data-username] (.active)
//   .text > .mention[data-user-id] (.me: mine)   li.message.mentions-me   #toast > #toast-text, #toast-action
//   #pane-empty (a conversation without messages)   #messages li.day[data-day]
//   #messages li.message[data-message-id][data-sender][data-state=sent] > .bubble (a tap shows the
//     buttons; a long press on a touch screen opens the reaction picker), .text, .edited, time,
//     .receipt[data-users], button.react, button.reply, button.edit, button.delete (named for their
//     message), .quote[data-reply-to] (.deleted once the answered message is) > .quote-sender,
//     .quote-text, .reactions > button.reaction[data-emoji][aria-pressed] > .emoji, .count
//     (title: who reacted), button.add-reaction, .reaction-error;
//     while editing: .edit-form > textarea.edit-text, button.save, button.cancel, .inline-error
//   #messages li.message.flash: the original just shown from a quote of it
//   dialog#reaction-picker[open].sheet (on a phone) > #picker-quick button.pick[data-emoji][aria-pressed],
//     button#picker-more-button, #picker-more > input#picker-search, #picker-grid button.pick, #picker-empty
//   #replying (the message being answered, above the box) > #replying-to, #replying-text, button#reply-cancel
//   #messages li.message.outgoing[data-client-id][data-state=pending|failed] > .quote, .text,
//     .send-error, button.retry, button.discard
//   #typing.typing[data-users]    #composer > textarea#text, button#send    #login-form > #username, #password
//   #new-conversation > dialog#new-dialog > #people-search, #people-results li.person[data-user-id] > button,
//     #chosen .chip[data-user-id], #start-conversation, #new-error
//   dialog#confirm > #confirm-title, #confirm-ok, #confirm-cancel, #confirm-error
'use strict';

// config.js (written per deployment) names the API; without it, the page's own origin.
const API_BASE = String((window.MESSAGING_CONFIG || {}).apiBase || '').replace(/\/+$/, '');
const PAGE_SIZE = 30; // messages per page when opening a thread
const TYPING_SEND_MS = 1500; // send at most one typing action this often (the server relays ≤ 1 per 300 ms)
const TYPING_SHOW_MS = 4000; // how long "x is typing…" stays after the last typing event
const PING_MS = 4 * 60 * 1000; // API Gateway closes connections idle for 10 minutes
const MAX_BACKOFF_MS = 30000;
const GROUP_GAP_MS = 5 * 60 * 1000; // messages of one sender closer than this share a header
const PHONE = window.matchMedia('(max-width: 700px)');

const $ = (id) => document.getElementById(id);
const menu = $('thread-menu'); // the conversation menu (its section is further down)

const state = {
  // Tokens live in sessionStorage: they survive a reload of this tab but not the tab itself, and
  // are never in a cookie, so no other site can make the browser send them.
  access: sessionStorage.getItem('access'),
  refresh: sessionStorage.getItem('refresh'),
  me: null, // {id, username}
  names: new Map(), // user id -> username
  threads: new Map(), // thread id -> thread as the API gives it (archived ones too, `archived` set)
  moreThreads: null, // the thread list's `next` link
  pagedThreads: false, // whether "More conversations" was used (then catch-up keeps that link)
  listView: 'main', // which list the sidebar shows: 'main', or 'archived' (GET /api/threads/?archived=true)
  moreArchived: null, // the archived list's `next` link
  pagedArchived: false,
  archivedBeyond: 0, // archived threads the list has that are not held (beyond its first page)
  totals: { unread_count: 0, threads: 0, mentions: 0 }, // GET /api/unread_count/, or unread.changed
  muteTimer: null, // wakes when the soonest mute with an end is over (the server sends nothing then)
  totalsTimer: null,
  menuThread: null, // the thread the conversation menu is open for
  menuOpener: null, // the button that opened it
  menuAt: null, // where a right-click or a long press opened it
  completion: null, // the open @-completion: {input, start, end, query, people: [{id, name}], active}
  threadsLoaded: false, // whether the list has answered once (before, it is not "empty")
  openId: null, // the open thread
  messages: new Map(), // message id -> message, of the open thread
  olderUrl: null, // the open thread's `next` link (older messages)
  pagedOlder: false, // whether older messages were loaded
  loadingOlder: false,
  since: null, // the open thread's version as of what we hold, for `?since=`
  unreadFrom: null, // id of the first message that was unread when the thread was opened
  pendingUnread: 0, // the open thread's unread count when it was opened, until its page is in
  reads: new Map(), // user id -> id of the newest message of the open thread they have read
  typers: new Map(), // user id -> timer hiding their "is typing"
  editing: null, // id of the message whose edit form is open
  replyTo: null, // the message being answered from the box, as a reply shows it: {id, sender, text, edited, deleted}
  // Reactions asked for and not yet answered, drawn as if done: message id -> (emoji without
  // variation selectors -> {emoji, on}). The answer, or the message.updated event, settles them.
  reacting: new Map(),
  reactionErrors: new Map(), // message id -> what went wrong with a reaction, shown under it
  picker: null, // the message the reaction picker is open for: {messageId}
  // Messages being sent or that failed, by client_id: {clientId, thread, text, created, status
  // (sending|failed), error, matched (the id of a live message that is probably this one)}.
  outbox: new Map(),
  nodes: new Map(), // rendered message rows by key, with the signature they were drawn from
  threadNodes: new Map(), // rendered thread list rows by thread id
  seen: new Set(), // event ids already handled (events may be redelivered with the same id)
  seenOrder: [],
  socket: null,
  live: 'offline', // connecting | open | reconnecting | offline
  attempts: 0, // reconnect attempts since the last open socket
  reconnectAt: 0, // when the next attempt is due
  reconnectTimer: null,
  countdownTimer: null,
  everOpen: false, // whether a socket has opened since logging in ("reconnecting", not "connecting")
  pingTimer: null,
  catchUpTimer: null,
  lastTypingSent: 0,
  refreshing: null, // the token refresh in flight, shared by every request that got a 401
  threadRefresh: new Map(), // thread id -> pending refresh timer
  // An answer about a thread that was asked for before the thread last changed here (a live
  // event) may predate that change: it loses. `changes` counts local changes; `changedAt` is
  // each thread's latest.
  changes: 0,
  changedAt: new Map(),
  readTimer: null,
  toastTimer: null,
};

// ---------------------------------------------------------------------------------------------
// HTTP

class ApiError extends Error {
  constructor(status, body) {
    super(ApiError.describe(status, body));
    this.status = status;
    this.body = body;
  }

  // DRF's shapes: {"detail": "..."} or {"field": ["message", ...]}.
  static describe(status, body) {
    if (body && typeof body.detail === 'string') return body.detail;
    if (body && typeof body === 'object') {
      for (const v of Object.values(body)) if (Array.isArray(v) && typeof v[0] === 'string') return v[0];
    }
    if (status >= 500) return `The server had a problem (HTTP ${status}).`;
    return `HTTP ${status}`;
  }
}

// What went wrong, in words for the person: a fetch that throws never reached an answer.
function reason(err) {
  if (err instanceof ApiError) return err.message;
  return 'No connection.';
}

function saveTokens(pair) {
  state.access = pair.access;
  state.refresh = pair.refresh;
  sessionStorage.setItem('access', pair.access);
  sessionStorage.setItem('refresh', pair.refresh);
}

function request(method, pathOrUrl, body, token) {
  // `next`/`previous` links are absolute URLs; everything else is a path under the API base.
  const url = /^https?:/.test(pathOrUrl) ? pathOrUrl : API_BASE + pathOrUrl;
  const headers = {};
  if (token) headers.Authorization = 'Bearer ' + token;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  return fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
}

// Refresh tokens rotate (each works once), so concurrent 401s must share one refresh.
function refreshTokens() {
  if (!state.refreshing) {
    state.refreshing = (async () => {
      if (!state.refresh) return false;
      const res = await request('POST', '/api/token/refresh/', { refresh: state.refresh });
      if (!res.ok) return false;
      saveTokens(await res.json());
      return true;
    })()
      .catch(() => false)
      .finally(() => { state.refreshing = null; });
  }
  return state.refreshing;
}

// An authenticated call: on 401, refresh once and retry; if that fails too, back to the login.
async function api(method, pathOrUrl, body) {
  const used = state.access;
  let res = await request(method, pathOrUrl, body, used);
  if (res.status === 401) {
    // Another request may have refreshed already while this one was in flight.
    const fresh = state.access !== used || (await refreshTokens());
    if (fresh) res = await request(method, pathOrUrl, body, state.access);
    if (res.status === 401) {
      logOut('Your session has ended. Please log in again.');
      throw new ApiError(401, null);
    }
  }
  const data = res.status === 204 ? null : await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

// The status of a create (201 new, 200 existing) matters to no one here, so `api` is enough.
const enc = encodeURIComponent;

// A send's idempotency key: a retry with the same one returns the original message.
function newClientId() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16)); // randomUUID needs a secure context
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
}

// ---------------------------------------------------------------------------------------------
// Small DOM helpers: elements are built, never parsed from strings.

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) node.append(c);
  return node;
}

// Line icons (24×24, stroked), made as SVG elements from these shapes.
const ICONS = {
  react: [['circle', { cx: 11, cy: 13, r: 8 }], ['path', { d: 'M8 15.5c.8 1 1.8 1.5 3 1.5s2.2-.5 3-1.5' }],
    ['path', { d: 'M8.5 10.5h.01M13.5 10.5h.01' }], ['path', { d: 'M19 2v6M16 5h6' }]],
  reply: [['path', { d: 'M9 17 4 12l5-5' }], ['path', { d: 'M20 18v-2a4 4 0 0 0-4-4H4' }]],
  edit: [['path', { d: 'M12 20h9' }], ['path', { d: 'M16.5 3.5a2.1 2.1 0 0 1 3 3L7 19l-4 1 1-4z' }]],
  delete: [['path', { d: 'M3 6h18' }], ['path', { d: 'M19 6v14a2 2 0 0 1-2 2H7a2 2 0 0 1-2-2V6' }],
    ['path', { d: 'M8 6V4a2 2 0 0 1 2-2h4a2 2 0 0 1 2 2v2' }]],
  plus: [['path', { d: 'M12 5v14M5 12h14' }]],
  bell: [['path', { d: 'M18 8A6 6 0 0 0 6 8c0 7-3 9-3 9h18s-3-2-3-9' }], ['path', { d: 'M13.73 21a2 2 0 0 1-3.46 0' }]],
  bellOff: [['path', { d: 'M13.73 21a2 2 0 0 1-3.46 0' }], ['path', { d: 'M18.63 13A17.9 17.9 0 0 1 18 8' }],
    ['path', { d: 'M6.26 6.26A5.9 5.9 0 0 0 6 8c0 7-3 9-3 9h14' }], ['path', { d: 'M18 8a6 6 0 0 0-9.33-5' }], ['path', { d: 'M1 1l22 22' }]],
  archive: [['path', { d: 'M21 8v13H3V8' }], ['path', { d: 'M1 3h22v5H1z' }], ['path', { d: 'M10 12h4' }]],
  unarchive: [['path', { d: 'M21 8v13H3V8' }], ['path', { d: 'M1 3h22v5H1z' }], ['path', { d: 'M12 18v-6M9.5 14.5 12 12l2.5 2.5' }]],
  chevronDown: [['path', { d: 'M6 9l6 6 6-6' }]],
  leave: [['path', { d: 'M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4' }], ['path', { d: 'M16 17l5-5-5-5' }], ['path', { d: 'M21 12H9' }]],
};

// The menu's icons, named in index.html.
function fillIcons() {
  for (const span of document.querySelectorAll('.menu-icon[data-icon]')) span.replaceChildren(icon(span.dataset.icon, 18));
}

function icon(name, size = 18) {
  const NS = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(NS, 'svg');
  const attrs = { viewBox: '0 0 24 24', width: size, height: size, fill: 'none', stroke: 'currentColor', 'stroke-width': 2,
    'stroke-linecap': 'round', 'stroke-linejoin': 'round', 'aria-hidden': 'true', focusable: 'false' };
  for (const [k, v] of Object.entries(attrs)) svg.setAttribute(k, String(v));
  for (const [tag, shape] of ICONS[name]) {
    const part = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(shape)) part.setAttribute(k, String(v));
    svg.append(part);
  }
  return svg;
}

// Puts `nodes` in `parent` in order, moving only what is out of place, so a focused button or a
// half-typed edit keeps its focus when the list around it changes.
function reconcile(parent, nodes) {
  let cur = parent.firstChild;
  for (const n of nodes) {
    if (n === cur) { cur = cur.nextSibling; continue; }
    parent.insertBefore(n, cur);
  }
  while (cur) { const next = cur.nextSibling; cur.remove(); cur = next; }
}

// Text with its web links made clickable and the people it mentions highlighted (`mentions`:
// their ids, as the message carries them): only http(s) URLs become links, only "@name" of a
// mentioned user is highlighted (mine more), and every part is set as text, never parsed.
function richText(text, mentions) {
  const out = document.createDocumentFragment();
  const re = /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]]/g;
  const named = mentionPattern(mentions);
  let at = 0;
  for (const match of text.matchAll(re)) {
    if (match.index > at) out.append(withMentions(text.slice(at, match.index), named));
    out.append(el('a', { href: match[0], target: '_blank', rel: 'noopener noreferrer', text: match[0] }));
    at = match.index + match[0].length;
  }
  if (at < text.length) out.append(withMentions(text.slice(at), named));
  return out;
}

// What a username may hold (Django's: letters, digits and @ . + - _), and what may stand right
// before an "@" that starts a mention: nothing, or a character that is none of those.
const NAME_CHAR = '[\\p{L}\\p{N}_.+\\-]';
const escapeRegExp = (s) => String(s).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function usernameOf(id) {
  if (state.me && id === state.me.id) return state.me.username;
  return state.names.get(id) || null;
}

// A pattern finding "@name" of each of these users (names known), and the id of each name.
function mentionPattern(ids) {
  const byName = new Map();
  for (const id of ids || []) {
    const name = usernameOf(id);
    if (name) byName.set(name.toLowerCase(), id);
  }
  if (!byName.size) return null;
  const names = [...byName.keys()].sort((a, b) => b.length - a.length).map(escapeRegExp);
  // A name may end a sentence ("@bob."), but "@bob.smith" is someone else.
  const re = new RegExp(`(?<!${NAME_CHAR}|@)@(${names.join('|')})(?!${NAME_CHAR.replace('.', '')}|\\.[\\p{L}\\p{N}])`, 'giu');
  return { re, byName };
}

function withMentions(text, named) {
  if (!named) return text;
  const out = document.createDocumentFragment();
  let at = 0;
  for (const match of text.matchAll(named.re)) {
    const id = named.byName.get(match[1].toLowerCase());
    if (match.index > at) out.append(text.slice(at, match.index));
    const mine = state.me && id === state.me.id;
    out.append(el('span', { class: 'mention' + (mine ? ' me' : ''), 'data-user-id': id, title: mine ? 'Mentions you' : `Mentions ${nameOf(id)}`, text: match[0] }));
    at = match.index + match[0].length;
  }
  if (at < text.length) out.append(text.slice(at));
  return out;
}

// The ids of `candidates` whose "@name" is in `text`: what a send or an edit mentions.
function mentionsIn(text, candidates) {
  const named = mentionPattern(candidates);
  if (!named) return [];
  const ids = [];
  for (const match of text.matchAll(named.re)) {
    const id = named.byName.get(match[1].toLowerCase());
    if (!ids.includes(id)) ids.push(id);
  }
  return ids;
}

// A short note at the bottom; `action` adds a button to it ({label, run}), such as Undo.
function toast(text, action) {
  const t = $('toast');
  const button = $('toast-action');
  $('toast-text').textContent = text;
  button.textContent = action ? action.label : '';
  button.hidden = !action;
  button.onclick = action ? () => { t.hidden = true; action.run(); } : null;
  t.hidden = !text;
  clearTimeout(state.toastTimer);
  if (text) state.toastTimer = setTimeout(() => { t.hidden = true; }, action ? 8000 : 5000);
}

function announce(text) {
  const region = $('announcer');
  region.append(el('p', { text }));
  while (region.childElementCount > 5) region.firstElementChild.remove();
}

function nameOf(id) {
  if (state.me && id === state.me.id) return 'you';
  return state.names.get(id) || `user ${id}`;
}

const snippet = (text, n = 40) => {
  const flat = String(text).replace(/\s+/g, ' ').trim();
  return flat.length > n ? flat.slice(0, n - 1) + '…' : flat;
};

// Initials as an avatar: "test_user" is TU, "alice" is A; the colour follows the id.
function initials(name) {
  const parts = String(name).split(/[\s._-]+/).filter(Boolean);
  const first = (s) => Array.from(s)[0] || '';
  return (parts.length > 1 ? first(parts[0]) + first(parts[1]) : first(parts[0] || '?')).toUpperCase();
}

// Hues far enough apart to tell people apart at a glance; the id picks one.
const HUES = [4, 28, 45, 95, 145, 175, 200, 222, 255, 285, 315, 340];
function hue(id) {
  let h = 0;
  for (const c of String(id)) h = (h * 31 + c.codePointAt(0)) >>> 0;
  return HUES[h % HUES.length];
}

function avatar(userId, extra) {
  const name = state.me && userId === state.me.id ? state.me.username : nameOf(userId);
  return el('span', { class: 'avatar' + (extra ? ' ' + extra : ''), 'aria-hidden': 'true', style: `--hue: ${hue(userId)}`, text: initials(name) });
}

// A thread's picture: the other person, or two of the others stacked for a group.
function threadAvatar(t) {
  const others = t.participants.filter((p) => !state.me || p !== state.me.id);
  if (others.length <= 1) return avatar(others[0] || (state.me && state.me.id) || '?');
  return el('span', { class: 'avatar-stack', 'aria-hidden': 'true' }, avatar(others[0], 'small'), avatar(others[1], 'small'));
}

function fillAvatar(node, userId) {
  const a = avatar(userId);
  node.textContent = a.textContent;
  node.setAttribute('style', a.getAttribute('style'));
}

// A message id is "<thread id>.<n>", n counting the thread's messages from 1.
const seq = (messageId) => Number(String(messageId).slice(String(messageId).lastIndexOf('.') + 1));

// ---------------------------------------------------------------------------------------------
// Dates: times in bubbles, "Today" / "Yesterday" / weekday / date between days, and the last
// activity's time in the list, all in the browser's locale and time zone.

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });
const weekdayFormat = new Intl.DateTimeFormat(undefined, { weekday: 'long' });
const shortWeekdayFormat = new Intl.DateTimeFormat(undefined, { weekday: 'short' });
const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: 'long', day: 'numeric', month: 'long' });
const dayYearFormat = new Intl.DateTimeFormat(undefined, { weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' });
const shortDateFormat = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short' });
const shortDateYearFormat = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short', year: 'numeric' });
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'short' });

const pad = (n) => String(n).padStart(2, '0');
const dayKey = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
const startOfDay = (d) => new Date(d.getFullYear(), d.getMonth(), d.getDate());
const daysAgo = (d) => Math.round((startOfDay(new Date()) - startOfDay(d)) / 86400000);

function dayLabel(d) {
  const ago = daysAgo(d);
  if (ago === 0) return 'Today';
  if (ago === 1) return 'Yesterday';
  if (ago > 1 && ago < 7) return weekdayFormat.format(d);
  return (d.getFullYear() === new Date().getFullYear() ? dayFormat : dayYearFormat).format(d);
}

function listTime(d) {
  const ago = daysAgo(d);
  if (ago <= 0) return timeFormat.format(d);
  if (ago === 1) return 'Yesterday';
  if (ago < 7) return shortWeekdayFormat.format(d);
  return (d.getFullYear() === new Date().getFullYear() ? shortDateFormat : shortDateYearFormat).format(d);
}

// ---------------------------------------------------------------------------------------------
// Logging in and out

$('login-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  $('login-error').textContent = '';
  const button = e.target.querySelector('button[type=submit]');
  button.disabled = true;
  try {
    const res = await request('POST', '/api/token/', { username: $('username').value, password: $('password').value });
    const body = await res.json().catch(() => null);
    if (!res.ok) {
      // 401 for wrong credentials, 429 after too many failures (with Retry-After).
      $('login-error').textContent = ApiError.describe(res.status, body) || `Login failed (HTTP ${res.status}).`;
      return;
    }
    saveTokens(body);
    $('password').value = '';
    await start();
  } catch (err) {
    $('login-error').textContent = 'Cannot reach the server. Check your connection and try again.';
  } finally {
    button.disabled = false;
  }
});

$('logout').addEventListener('click', () => logOut(''));

function logOut(message) {
  state.access = state.refresh = null;
  sessionStorage.removeItem('access');
  sessionStorage.removeItem('refresh');
  closeSocket();
  state.me = null;
  state.threads.clear();
  state.threadNodes.clear();
  state.threadsLoaded = false;
  state.outbox.clear();
  closeThread();
  $('threads').replaceChildren();
  for (const d of document.querySelectorAll('dialog[open]')) d.close();
  $('app-view').hidden = true;
  $('login-view').hidden = false;
  $('login-error').textContent = message || '';
  document.title = 'Messages';
  if (location.hash) history.replaceState(null, '', location.pathname + location.search);
}

async function start() {
  state.me = await api('GET', '/api/users/me/');
  $('login-view').hidden = true;
  $('app-view').hidden = false;
  $('me').textContent = state.me.username;
  fillAvatar($('me-avatar'), state.me.id);
  showScreen('list');
  await loadNames().catch(() => {});
  // Show the threads at once, and fetch again whenever the socket opens (connect), so that
  // nothing falls between the fetched state and the first event.
  connect();
  await catchUp().catch(() => {});
  const wanted = threadInUrl();
  if (wanted && state.threads.has(wanted)) openThread(wanted, { history: 'none' });
}

// The API has no lookup of a user by id, so the client keeps the directory of active users
// (GET /api/users/, 100 a page) to show names. A very large deployment would want such a lookup.
let namesLoadedAt = 0;
async function loadNames() {
  namesLoadedAt = Date.now();
  let url = '/api/users/?limit=100';
  for (let page = 0; url && page < 20; page++) {
    const body = await api('GET', url);
    for (const u of body.results) state.names.set(u.id, u.username);
    url = body.next;
  }
}

// Someone unknown (a new user) appeared: reload the directory, at most once a minute.
function learnNames(ids) {
  if (ids.some((id) => !state.names.has(id) && id !== (state.me && state.me.id)) && Date.now() - namesLoadedAt > 60000) {
    loadNames().then(() => { renderThreads(); renderOpenTitle(); renderMessages(); }).catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------
// Screens: on a phone the list and the conversation are separate screens; the browser's Back
// goes from a conversation to the list (the conversation is a history entry, #t=<id>).

function showScreen(screen) {
  $('app-view').dataset.screen = screen;
}

function threadInUrl() {
  const m = /^#t=(.+)$/.exec(location.hash);
  return m ? decodeURIComponent(m[1]) : null;
}

window.addEventListener('popstate', () => {
  if (!state.me) return;
  const wanted = threadInUrl();
  if (wanted && state.threads.has(wanted)) {
    if (wanted !== state.openId) openThread(wanted, { history: 'none' });
    showScreen('thread');
  } else {
    backToList();
  }
});

function backToList() {
  const was = state.openId;
  closeThread();
  showScreen('list');
  const row = was && $('threads').querySelector(`[data-thread-id="${CSS.escape(was)}"] button.open`);
  if (row) row.focus();
}

$('back').addEventListener('click', () => {
  if (history.state && history.state.thread) history.back(); // popstate shows the list
  else {
    if (location.hash) history.replaceState(null, '', location.pathname + location.search);
    backToList();
  }
});

// ---------------------------------------------------------------------------------------------
// Catching up after every (re)connect: the thread list and totals again, and for the open
// thread exactly what was sent, edited or deleted since the version we hold (`?since=`).

async function catchUp() {
  clearTimeout(state.catchUpTimer);
  try {
    await Promise.all([loadThreads(), loadTotals()]);
    if (state.openId) await (state.since ? loadChanges(state.openId) : loadNewestPage(state.openId));
  } catch (err) {
    // Live again but the API failed: try again shortly, while the socket stays open.
    if (!(err instanceof ApiError && err.status === 401)) {
      state.catchUpTimer = setTimeout(() => { if (state.live === 'open') catchUp().catch(() => {}); }, 3000);
    }
    throw err;
  }
}

// Each answer holds every message touched since `state.since`, once, as it is now; a deleted
// one is a tombstone. An edit of a message older than what we show is left for "older" to load.
async function loadChanges(id) {
  let url = `/api/threads/${enc(id)}/messages/?since=${enc(state.since)}`;
  const lowest = Math.min(...[...state.messages.keys()].map(seq));
  let added = false;
  while (url) {
    let changes;
    try {
      changes = await api('GET', url);
    } catch (err) {
      if (err.status === 404) dropThread(id);
      throw err;
    }
    if (state.openId !== id) return;
    for (const m of changes.results) {
      if (m.deleted) { forgetMessage(m.id); continue; }
      if (state.messages.has(m.id) || !state.messages.size || seq(m.id) > lowest) {
        if (!state.messages.has(m.id)) {
          added = true;
          if (m.sender !== state.me.id) announceMessage(m);
        }
        const { deleted, ...message } = m;
        holdMessage(message);
      }
    }
    state.since = changes.since;
    url = changes.next;
  }
  setPaneError(null);
  renderMessages({ newFromOthers: added });
  refreshThread(id); // catching up marks read, as the list does
}

async function loadTotals() {
  setTotals(await api('GET', '/api/unread_count/'));
}

// The totals leave muted threads out (the server's doing). The page's title and the app's
// badge show them, with the unread mentions first: "(@2 · 5) Messages".
function setTotals(t) {
  state.totals = { unread_count: t.unread_count || 0, threads: t.threads || 0, mentions: t.mentions || 0 };
  const { unread_count: unread, mentions } = state.totals;
  const total = $('total-unread');
  total.textContent = String(unread);
  total.dataset.unread = String(unread);
  total.dataset.threads = String(state.totals.threads);
  $('total').hidden = !unread;
  const at = $('total-mentions');
  at.textContent = `@ ${mentions}`;
  at.dataset.mentions = String(mentions);
  at.setAttribute('aria-label', `${mentions} unread ${mentions === 1 ? 'mention' : 'mentions'} of you`);
  at.hidden = !mentions;
  document.title = unread ? `(${mentions ? `@${mentions} · ` : ''}${unread}) Messages` : 'Messages';
  if (navigator.setAppBadge) (unread ? navigator.setAppBadge(unread) : navigator.clearAppBadge()).catch(() => {});
}

// The totals again, a little later, so that several changes cost one request.
function loadTotalsSoon() {
  clearTimeout(state.totalsTimer);
  state.totalsTimer = setTimeout(() => { if (state.me) loadTotals().catch(() => {}); }, 250);
}

// The first page of threads and of archived threads, merged into what we hold: threads newer
// than a page's oldest that are missing from both are gone (deleted, or we were removed).
async function loadThreads() {
  const asked = state.changes;
  let main;
  let archived;
  try {
    [main, archived] = await Promise.all([api('GET', '/api/threads/?limit=50'), api('GET', '/api/threads/?archived=true&limit=50')]);
  } catch (err) {
    if (!state.threads.size) setThreadsError(`Couldn't load your conversations: ${reason(err)}`);
    throw err;
  }
  setThreadsError(null);
  state.threadsLoaded = true;
  // Without a next page a list is complete, so anything else we hold of it is gone.
  const oldest = (page) => (page.next && page.results.length ? page.results[page.results.length - 1].updated : '');
  const stale = (id) => (state.changedAt.get(id) || 0) > asked;
  const listed = new Set([...main.results, ...archived.results].map((t) => t.id));
  for (const [id, t] of state.threads) {
    if (!listed.has(id) && !stale(id) && t.updated >= oldest(t.archived ? archived : main)) state.threads.delete(id);
  }
  for (const t of [...main.results, ...archived.results]) if (!stale(t.id)) state.threads.set(t.id, t);
  if (!state.pagedThreads) state.moreThreads = main.next;
  if (!state.pagedArchived) {
    state.moreArchived = archived.next;
    state.archivedBeyond = Math.max(0, archived.count - archived.results.length);
  }
  learnNames([...main.results, ...archived.results].flatMap((t) => t.participants));
  scheduleMuteEnd();
  renderThreads();
  if (state.openId) {
    if (!state.threads.has(state.openId)) threadGone('This conversation is no longer available to you.');
    else { renderOpenTitle(); renderMessages(); }
  }
}

function setThreadsError(text) {
  $('threads-error').hidden = !text;
  $('threads-error-text').textContent = text || '';
}

$('threads-retry').addEventListener('click', () => { catchUp().catch(() => {}); });

$('more-threads').addEventListener('click', async () => {
  const archived = state.listView === 'archived';
  const url = archived ? state.moreArchived : state.moreThreads;
  if (!url) return;
  const button = $('more-threads');
  button.disabled = true;
  try {
    const page = await api('GET', url);
    for (const t of page.results) state.threads.set(t.id, t);
    if (archived) {
      state.moreArchived = page.next;
      state.pagedArchived = true;
      state.archivedBeyond = Math.max(0, state.archivedBeyond - page.results.length);
    } else {
      state.moreThreads = page.next;
      state.pagedThreads = true;
    }
    setThreadsError(null);
    scheduleMuteEnd();
    renderThreads();
  } catch (err) {
    setThreadsError(`Couldn't load more conversations: ${reason(err)}`);
  } finally {
    button.disabled = false;
  }
});

// One thread again (its unread count, last message and place in the list), a little later so
// that a burst of events costs one request.
function refreshThread(id) {
  touchThread(id);
  clearTimeout(state.threadRefresh.get(id));
  state.threadRefresh.set(id, setTimeout(async () => {
    state.threadRefresh.delete(id);
    const asked = state.changes;
    try {
      const t = await api('GET', `/api/threads/${enc(id)}/`);
      if ((state.changedAt.get(id) || 0) > asked) return; // a newer refresh is on its way
      setThread(t);
      learnNames(t.participants);
      renderThreads();
      if (t.id === state.openId) renderOpenTitle();
    } catch (err) {
      if (err.status === 404) dropThread(id);
    }
  }, 150));
}

function touchThread(id) {
  state.changedAt.set(id, ++state.changes);
}

// A thread as the API answered it (with the caller's counts, mute and archive).
function setThread(t) {
  const held = state.threads.get(t.id);
  // An archived thread beyond the first page of the archived list, now held.
  if (t.archived && !held && state.archivedBeyond > 0) state.archivedBeyond--;
  state.threads.set(t.id, t);
  scheduleMuteEnd();
}

// A thread from a live event: `thread.created` and `thread.updated` carry the thread without
// the receiver's `unread_count` (older servers sent the stored item, with counters of their
// own), so the fields every thread has are merged into the one held and its unread count, which
// the API and `unread.changed` keep, stays.
function mergeThread(incoming) {
  const held = state.threads.get(incoming.id);
  const newer = !held || !held.updated || incoming.updated >= held.updated;
  const t = {
    id: incoming.id,
    participants: incoming.participants || (held && held.participants) || [],
    owner: incoming.owner || (held && held.owner),
    created: incoming.created || (held && held.created),
    updated: newer ? incoming.updated || (held && held.updated) : held.updated,
    last_message: newer && 'last_message' in incoming ? incoming.last_message : (held ? held.last_message : null),
    // The caller's own, which the event cannot carry.
    unread_count: held ? held.unread_count || 0 : 0,
    unread_mentions: held ? held.unread_mentions || 0 : 0,
    muted: held ? !!held.muted : false,
    muted_until: held ? held.muted_until || null : null,
    archived: held ? !!held.archived : false,
  };
  state.threads.set(t.id, t);
  touchThread(t.id);
  return t;
}

// Shows a new message in the list at once (the refresh that follows brings the unread count).
// A new message brings an archived thread back to the list, unless it is muted (as the server
// does it).
function bumpThread(id, m) {
  const t = state.threads.get(id);
  if (!t || !m) return;
  touchThread(id);
  if (!t.last_message || seq(m.id) >= seq(t.last_message.id)) {
    t.last_message = m;
    if (m.created > t.updated) t.updated = m.created;
  }
  if (t.archived && !isMuted(t)) t.archived = false;
  renderThreads();
  if (id === state.openId) renderOpenTitle();
}

// Whether the caller has the thread muted now: a mute with an end is over by itself.
function isMuted(t) {
  return !!t.muted && (!t.muted_until || Date.parse(t.muted_until) > Date.now());
}

// The server writes nothing when a mute ends: wake then, show the thread unmuted and fetch the
// totals, which count it again.
function scheduleMuteEnd() {
  clearTimeout(state.muteTimer);
  let soonest = Infinity;
  for (const t of state.threads.values()) {
    if (t.muted && t.muted_until) soonest = Math.min(soonest, Date.parse(t.muted_until));
  }
  if (soonest === Infinity) return;
  // setTimeout holds at most about 24 days; a longer wait wakes once meanwhile.
  const wait = Math.min(Math.max(0, soonest - Date.now()) + 50, 2 ** 31 - 1);
  state.muteTimer = setTimeout(() => {
    let ended = false;
    for (const t of state.threads.values()) {
      if (t.muted && t.muted_until && Date.parse(t.muted_until) <= Date.now()) {
        t.muted = false;
        t.muted_until = null;
        touchThread(t.id);
        ended = true;
      }
    }
    if (ended) {
      renderThreads();
      renderOpenTitle();
      loadTotalsSoon();
    }
    scheduleMuteEnd();
  }, wait);
}

// "5:30 PM", "tomorrow, 9:00 AM", "Friday, 9:00 AM" or "12 Mar, 9:00 AM": when a mute ends.
function untilText(iso) {
  const d = new Date(iso);
  const ahead = -daysAgo(d);
  const time = timeFormat.format(d);
  if (ahead <= 0) return time;
  if (ahead === 1) return `tomorrow, ${time}`;
  if (ahead < 7) return `${weekdayFormat.format(d)}, ${time}`;
  return `${(d.getFullYear() === new Date().getFullYear() ? shortDateFormat : shortDateYearFormat).format(d)}, ${time}`;
}

function mutedText(t) {
  return t.muted_until ? `Muted until ${untilText(t.muted_until)}` : 'Muted';
}

function dropThread(id) {
  touchThread(id);
  state.threads.delete(id);
  for (const [k, o] of state.outbox) if (o.thread === id) state.outbox.delete(k);
  renderThreads();
  if (state.openId === id) threadGone('This conversation is no longer available to you.');
}

// "Your conversation with bob", or a group's "“admin, bob”", for sentences.
function conversationName(t) {
  return isGroup(t) ? `“${threadTitle(t)}”` : `Your conversation with ${threadTitle(t)}`;
}

function isGroup(t) {
  return t.participants.length > 2;
}

function threadTitle(t) {
  const others = t.participants.filter((p) => !state.me || p !== state.me.id);
  return others.map(nameOf).sort().join(', ') || 'Only you';
}

function preview(t) {
  const m = t.last_message;
  if (!m) return 'No messages yet';
  const text = String(m.text).replace(/\s+/g, ' ');
  if (state.me && m.sender === state.me.id) return `You: ${text}`;
  return isGroup(t) ? `${nameOf(m.sender)}: ${text}` : text;
}

// The list the sidebar shows (the chats, or the archived ones), ordered as the API orders
// them: most recent activity (`updated`) first. Rows are kept and redrawn only when what they
// show changed. A muted thread has a muted icon and grey badges (its unread messages are left
// out of the totals); "@" marks unread messages that mention me.
function renderThreads() {
  const archivedView = state.listView === 'archived';
  const all = [...state.threads.values()];
  const sorted = all.filter((t) => !!t.archived === archivedView)
    .sort((a, b) => (a.updated < b.updated ? 1 : a.updated > b.updated ? -1 : 0));
  const nodes = sorted.map((t) => {
    const unread = t.unread_count || 0;
    const mentions = t.unread_mentions || 0;
    const muted = isMuted(t);
    const selected = t.id === state.openId;
    const when = new Date(t.last_message ? t.last_message.created : t.updated);
    const sig = JSON.stringify([threadTitle(t), preview(t), unread, mentions, muted, t.muted_until, !!t.archived, selected, t.owner, t.participants, listTime(when)]);
    const held = state.threadNodes.get(t.id);
    if (held && held.sig === sig) return held.node;
    const cls = 'thread' + (selected ? ' selected' : '') + (unread ? ' unread' : '') + (muted ? ' muted' : '');
    const node = el('li', { class: cls, 'data-thread-id': t.id, 'data-unread': unread, 'data-mentions': mentions, 'data-muted': String(muted), 'data-archived': String(!!t.archived), 'data-owner': t.owner },
      el('button', { class: 'open', type: 'button', 'aria-current': selected ? 'true' : null, onclick: () => openThread(t.id) },
        threadAvatar(t),
        el('span', { class: 'title-line' },
          el('span', { class: 'title', text: threadTitle(t) }),
          muted ? el('span', { class: 'muted-icon', title: mutedText(t) }, icon('bellOff', 14), el('span', { class: 'visually-hidden', text: mutedText(t) })) : null),
        el('time', { class: 'when', datetime: when.toISOString(), title: fullFormat.format(when), text: listTime(when) }),
        el('span', { class: 'preview', text: preview(t) }),
        el('span', { class: 'badges' },
          el('span', { class: 'mention-badge' + (muted ? ' muted' : ''), text: '@', hidden: mentions === 0, title: `${mentions} unread ${mentions === 1 ? 'mention' : 'mentions'} of you`, 'aria-label': `${mentions} unread ${mentions === 1 ? 'mention' : 'mentions'} of you` }),
          el('span', { class: 'badge' + (muted ? ' muted' : ''), text: String(unread), hidden: unread === 0, 'aria-label': `${unread} unread${muted ? ' (muted)' : ''}` }))),
      el('button', { class: 'row-menu', type: 'button', 'aria-haspopup': 'menu', 'aria-expanded': 'false', 'aria-controls': 'thread-menu', 'aria-label': `Options for ${conversationName(t).replace(/^Your/, 'your')}`, title: 'Options' },
        icon('chevronDown', 18)));
    if (held && held.node.contains(document.activeElement)) {
      queueMicrotask(() => node.querySelector('button.open').focus());
    }
    // The chat whose menu is open stays marked, and the menu keeps to its new options button.
    if (held && state.menuOpener && held.node.contains(state.menuOpener)) {
      for (const c of ['menu-open', 'menu-target']) if (held.node.classList.contains(c)) node.classList.add(c);
      state.menuOpener = node.querySelector('button.row-menu');
      state.menuOpener.setAttribute('aria-expanded', 'true');
    }
    state.threadNodes.set(t.id, { sig, node });
    return node;
  });
  for (const id of state.threadNodes.keys()) if (!state.threads.has(id)) state.threadNodes.delete(id);
  reconcile($('threads'), nodes);
  // A chat leaving the list shown (archived, say) takes its open menu with it.
  if (state.menuOpener && !state.menuOpener.isConnected && !menu.hidden) closeMenu();
  // "Archived (n)" above the chats, while there are any; the archived list has a bar of its own.
  const archivedCount = all.filter((t) => t.archived).length + state.archivedBeyond;
  const unreadArchived = all.some((t) => t.archived && t.unread_count && !isMuted(t));
  $('archived-count').textContent = String(archivedCount);
  $('archived-count').dataset.count = String(archivedCount);
  $('show-archived').classList.toggle('unread', unreadArchived);
  $('show-archived').setAttribute('aria-label', `Archived chats: ${archivedCount}`);
  $('show-archived').hidden = archivedView || archivedCount === 0;
  $('archived-bar').hidden = !archivedView;
  $('archived-hint').hidden = !archivedView;
  $('sidebar').dataset.view = state.listView;
  $('sidebar').querySelector('.sidebar-head .title-row').hidden = archivedView;
  const empty = $('threads-empty');
  empty.textContent = archivedView ? 'No archived chats.' : archivedCount ? 'All your chats are archived.' : 'No conversations yet.';
  empty.hidden = !state.threadsLoaded || sorted.length > 0 || !$('threads-error').hidden;
  $('more-threads').hidden = !(archivedView ? state.moreArchived : state.moreThreads);
}

// The sidebar's two lists: the chats, and the archived ones.
function showList(view) {
  if (state.listView === view) return;
  state.listView = view;
  renderThreads();
  $('sidebar').querySelector('.threads-scroll').scrollTop = 0;
  (view === 'archived' ? $('archived-back') : $('show-archived')).focus({ preventScroll: true });
  if (view === 'main' && $('show-archived').hidden) {
    const first = $('threads').querySelector('button.open');
    if (first) first.focus({ preventScroll: true });
  }
}

$('show-archived').addEventListener('click', () => showList('archived'));
$('archived-back').addEventListener('click', () => showList('main'));

// ---------------------------------------------------------------------------------------------
// The open thread

async function openThread(id, { history: how = 'auto' } = {}) {
  if (state.openId === id) { showScreen('thread'); return; }
  const was = state.openId;
  closeThread();
  state.openId = id;
  const t = state.threads.get(id);
  // The first unread message gets a "New messages" line: the newest `unread_count` from others.
  state.pendingUnread = t ? t.unread_count || 0 : 0;
  $('thread-view').hidden = false;
  $('no-thread').hidden = true;
  showScreen('thread');
  // From the list a conversation is a new history entry (Back returns to the list); switching
  // between conversations replaces it.
  const url = `#t=${enc(id)}`;
  if (how === 'auto' && location.hash !== url) {
    if (was || (history.state && history.state.thread)) history.replaceState({ thread: id }, '', url);
    else history.pushState({ thread: id }, '', url);
  }
  renderOpenTitle();
  renderThreads();
  renderMessages();
  if (!PHONE.matches) $('text').focus();
  try {
    await loadNewestPage(id);
    await loadReceipts(id);
  } catch (err) {
    // shown in the pane by loadNewestPage
  }
}

function closeThread() {
  state.openId = null;
  state.messages.clear();
  state.nodes.clear();
  state.reads.clear();
  state.olderUrl = null;
  state.pagedOlder = false;
  state.since = null;
  state.editing = null;
  state.unreadFrom = null;
  state.pendingUnread = 0;
  state.replyTo = null;
  state.reacting.clear();
  for (const id of [...state.reactionErrors.keys()]) setReactionError(id, null);
  closePicker(false);
  closeCompletion();
  renderReplying();
  for (const timer of state.typers.values()) clearTimeout(timer);
  state.typers.clear();
  closeMenu();
  $('messages').replaceChildren();
  $('thread-view').hidden = true;
  $('no-thread').hidden = false;
  $('older').hidden = true;
  $('jump').hidden = true;
  $('pane-empty').hidden = true;
  setPaneError(null);
  renderTyping();
  renderThreads();
}

function threadGone(message) {
  const phone = $('app-view').dataset.screen === 'thread';
  closeThread();
  if (location.hash) history.replaceState(null, '', location.pathname + location.search);
  if (phone) showScreen('list');
  toast(message);
}

function renderOpenTitle() {
  const t = state.threads.get(state.openId);
  if (!t) return;
  $('thread-title').textContent = threadTitle(t);
  const others = t.participants.filter((p) => p !== state.me.id);
  $('thread-subtitle').textContent = isGroup(t)
    ? `${t.participants.length} people: you, ${others.map(nameOf).sort().join(', ')}`
    : '';
  $('thread-subtitle').hidden = !isGroup(t);
  const muted = isMuted(t);
  $('thread-muted-icon').hidden = !muted;
  $('thread-muted-icon').title = muted ? mutedText(t) : '';
  $('thread-muted').hidden = !muted;
  $('thread-muted').textContent = muted ? mutedText(t) : '';
  $('thread-sub').hidden = !isGroup(t) && !muted;
  $('thread-archived').hidden = !t.archived;
  const pic = $('thread-avatar');
  pic.replaceChildren();
  pic.removeAttribute('style');
  const a = threadAvatar(t);
  pic.className = a.className;
  if (a.getAttribute('style')) pic.setAttribute('style', a.getAttribute('style'));
  pic.append(...a.childNodes);
  renderMenu(t);
}

function setPaneError(text) {
  $('pane-error').hidden = !text;
  $('pane-error-text').textContent = text || '';
}

$('pane-retry').addEventListener('click', () => {
  const id = state.openId;
  if (!id) return;
  setPaneError(null);
  (state.since ? loadChanges(id) : loadNewestPage(id)).then(() => loadReceipts(id)).catch(() => {});
});

// Listing the newest page is how the API marks a thread read ("reading the first page marks
// the whole thread read"), so opening a thread and catching up both mark it read.
async function loadNewestPage(id) {
  let page;
  try {
    page = await api('GET', `/api/threads/${enc(id)}/messages/?limit=${PAGE_SIZE}`);
  } catch (err) {
    if (err.status === 404) dropThread(id);
    else if (state.openId === id) setPaneError(`Couldn't load messages: ${reason(err)}`);
    throw err;
  }
  if (state.openId !== id) return;
  setPaneError(null);
  state.since = page.since;
  // Messages in the page's range that it no longer has were deleted while we were away.
  const lowest = page.results.length ? seq(page.results[page.results.length - 1].id) : 0;
  for (const m of [...state.messages.values()]) {
    if (seq(m.id) >= lowest && !page.results.some((r) => r.id === m.id)) forgetMessage(m.id);
  }
  const first = !state.messages.size;
  for (const m of page.results) holdMessage(m);
  if (first && state.pendingUnread > 0) {
    const fromOthers = page.results.filter((m) => m.sender !== state.me.id); // newest first
    const oldestUnread = fromOthers[Math.min(state.pendingUnread, fromOthers.length) - 1];
    state.unreadFrom = oldestUnread ? oldestUnread.id : null;
  }
  state.pendingUnread = 0;
  if (!state.pagedOlder) state.olderUrl = page.next;
  $('older').hidden = !state.olderUrl;
  renderMessages({ scroll: first ? 'bottom' : undefined });
  refreshThread(id); // its unread count is 0 now
}

async function loadOlder() {
  const id = state.openId;
  if (!state.olderUrl || state.loadingOlder) return;
  state.loadingOlder = true;
  $('older').disabled = true;
  try {
    const page = await api('GET', state.olderUrl); // older pages change no read state
    if (state.openId !== id) return;
    for (const m of page.results) holdMessage(m);
    state.olderUrl = page.next;
    state.pagedOlder = true;
    $('older').hidden = !state.olderUrl;
    setPaneError(null);
    renderMessages({ scroll: 'prepend' });
  } catch (err) {
    if (state.openId === id) setPaneError(`Couldn't load older messages: ${reason(err)}`);
  } finally {
    state.loadingOlder = false;
    $('older').disabled = false;
  }
}

$('older').addEventListener('click', loadOlder);

// Where each other participant has read up to. `read_by` of a message lists who has read it,
// and reading is "everything up to a message", so the newest message a user appears under is
// their place. A few of the newest messages are enough for a chat; live `thread.read` events
// keep it current from then on.
async function loadReceipts(id) {
  const t = state.threads.get(id);
  if (!t) return;
  const others = new Set(t.participants.filter((p) => p !== state.me.id));
  const newestFirst = [...state.messages.values()].sort((a, b) => seq(b.id) - seq(a.id)).slice(0, 5);
  for (const m of newestFirst) {
    if (![...others].some((u) => !state.reads.has(u))) break;
    let detail;
    try {
      detail = await api('GET', `/api/threads/${enc(id)}/messages/${enc(m.id)}/`);
    } catch (err) {
      continue; // deleted meanwhile
    }
    if (state.openId !== id) return;
    for (const r of detail.read_by) {
      if (others.has(r.user)) setRead(r.user, m.id);
    }
  }
  renderReceipts();
}

function setRead(user, messageId) {
  const held = state.reads.get(user);
  if (!held || seq(messageId) > seq(held)) state.reads.set(user, messageId);
}

function holdMessage(m) {
  state.messages.set(m.id, m);
  followOriginal(m.id, m);
}

function forgetMessage(id) {
  state.messages.delete(id);
  if (state.editing === id) state.editing = null;
  state.reacting.delete(id);
  setReactionError(id, null);
  if (state.picker && state.picker.messageId === id) closePicker(false);
  followOriginal(id, null);
}

// ---------------------------------------------------------------------------------------------
// The message pane: day separators, sender headers for runs of one sender's messages, what is
// being sent at the end, and the scroll kept at the newest message unless the person scrolled
// up to read older ones.

const pane = $('pane');

function atBottom() {
  return pane.scrollHeight - pane.scrollTop - pane.clientHeight < 48;
}

function scrollToEnd() {
  pane.scrollTop = pane.scrollHeight;
  $('jump').hidden = true;
}

pane.addEventListener('scroll', () => {
  if (atBottom()) $('jump').hidden = true;
  if (pane.scrollTop < 120 && state.olderUrl && !state.loadingOlder && state.messages.size) loadOlder();
});

$('jump').addEventListener('click', scrollToEnd);

function renderMessages({ scroll, newFromOthers = false } = {}) {
  if (!state.openId || !state.me) return;
  const stick = atBottom();
  const before = { height: pane.scrollHeight, top: pane.scrollTop };
  const t = state.threads.get(state.openId);
  const group = !!t && isGroup(t);
  const owner = !!t && t.owner === state.me.id;
  const items = [...state.messages.values()].sort((a, b) => seq(a.id) - seq(b.id)).map((m) => ({ m }));
  for (const o of state.outbox.values()) if (o.thread === state.openId && !o.matched) items.push({ o });
  const nodes = [];
  const shown = new Set();
  let prevDay = null;
  let prevSender = null;
  let prevTime = 0;
  for (const it of items) {
    const created = new Date(it.m ? it.m.created : it.o.created);
    const day = dayKey(created);
    if (day !== prevDay) {
      nodes.push(dayNode(day, created, shown));
      prevDay = day;
      prevSender = null;
    }
    if (it.m && it.m.id === state.unreadFrom) {
      nodes.push(cached('unread', 'unread', () => el('li', { class: 'unread-line', role: 'separator', 'aria-label': 'New messages' }, el('span', { text: 'New messages' })), shown));
      prevSender = null;
    }
    const sender = it.m ? it.m.sender : state.me.id;
    const first = sender !== prevSender || created - prevTime > GROUP_GAP_MS;
    prevSender = sender;
    prevTime = +created;
    nodes.push(it.m ? messageNode(it.m, { first, group, owner }, shown) : outgoingNode(it.o, { first }, shown));
  }
  reconcile($('messages'), nodes);
  for (const k of state.nodes.keys()) if (!shown.has(k)) state.nodes.delete(k);
  // A conversation without messages yet says so, once its newest page has answered.
  const empty = !items.length && state.since !== null && !state.olderUrl;
  $('pane-empty').hidden = !empty;
  if (empty && t) $('pane-empty').textContent = `No messages yet. Say hello to ${threadTitle(t)}!`;
  $('messages').setAttribute('aria-busy', 'false');
  renderReceipts();
  if (scroll === 'bottom' || (scroll !== 'prepend' && stick)) scrollToEnd();
  else if (scroll === 'prepend') pane.scrollTop = before.top + (pane.scrollHeight - before.height);
  else if (newFromOthers) $('jump').hidden = false;
}

// A rendered row, reused while its signature stays the same.
function cached(key, sig, build, shown) {
  shown.add(key);
  const held = state.nodes.get(key);
  if (held && held.sig === sig) return held.node;
  const node = build();
  state.nodes.set(key, { sig, node });
  return node;
}

function dayNode(day, date, shown) {
  const label = dayLabel(date);
  return cached('day:' + day, label, () => el('li', { class: 'day', 'data-day': day },
    el('h3', {}, el('time', { datetime: day, text: label }))), shown);
}

function messageNode(m, { first, group, owner }, shown) {
  const key = 'm:' + m.id;
  if (state.editing === m.id && state.nodes.has(key)) { shown.add(key); return state.nodes.get(key).node; }
  const mine = m.sender === state.me.id;
  const r = m.reply_to;
  const quoted = r ? [r.id, r.text, r.edited, !!r.deleted, nameOf(r.sender)] : null;
  const mentioned = (m.mentions || []).map((id) => [id, usernameOf(id)]);
  const sig = JSON.stringify([m.text, m.edited, first, group, owner, nameOf(m.sender), quoted, mentioned]);
  const held = state.nodes.get(key);
  const node = cached(key, sig, () => renderMessage(m, { mine, first, group, canDelete: mine || owner }), shown);
  if (held && held.node !== node) keepPlace(held.node, node);
  fillReactions(node, m);
  return node;
}

// A message drawn again (its text or quote changed) keeps its buttons shown and the focus.
function keepPlace(old, node) {
  for (const c of ['show-actions', 'picking']) if (old.classList.contains(c)) node.classList.add(c);
  const focused = document.activeElement;
  if (!focused || !old.contains(focused)) return;
  const same = ['bubble', 'react', 'reply', 'edit', 'delete', 'quote', 'add-reaction'].find((c) => focused.classList.contains(c));
  const css = focused.classList.contains('reaction') ? `.reaction[data-emoji="${CSS.escape(focused.dataset.emoji)}"]` : same ? '.' + same : '.bubble';
  queueMicrotask(() => { const again = node.querySelector(css) || node.querySelector('.bubble'); if (again) again.focus({ preventScroll: true }); });
}

function renderMessage(m, { mine, first, group, canDelete }) {
  const when = new Date(m.created);
  const whose = mine ? 'your message' : `${nameOf(m.sender)}'s message`;
  const quote = `“${snippet(m.text)}”`;
  const action = (cls, label, title, onclick) => el('button', { class: cls, type: 'button', 'aria-label': `${label} ${whose} ${quote}`, title, onclick }, icon(cls));
  const mentionsMe = !mine && (m.mentions || []).includes(state.me.id);
  return el('li', { class: 'message' + (mine ? ' mine' : ' theirs') + (first ? ' first' : '') + (mentionsMe ? ' mentions-me' : ''), 'data-message-id': m.id, 'data-sender': m.sender, 'data-state': 'sent' },
    el('div', { class: 'row' },
      !mine && group ? (first ? avatar(m.sender) : el('span', { class: 'avatar-space', 'aria-hidden': 'true' })) : null,
      el('div', { class: 'stack' },
        el('div', { class: 'bubble-wrap' },
          el('div', { class: 'bubble', tabindex: '0', onclick: (e) => toggleActions(e) },
            el('span', { class: mine || !group || !first ? 'sender visually-hidden' : 'sender', style: mine ? null : `--hue: ${hue(m.sender)}`, text: mine ? 'You' : nameOf(m.sender) }),
            m.reply_to ? quoteNode(m.reply_to) : null,
            el('div', { class: 'text' }, richText(m.text, m.mentions)),
            el('div', { class: 'meta' },
              m.edited ? el('span', { class: 'edited', title: `Edited ${fullFormat.format(new Date(m.edited))}`, text: 'edited' }) : null,
              el('time', { datetime: m.created, title: fullFormat.format(when), text: timeFormat.format(when) }))),
          el('div', { class: 'actions', role: 'group', 'aria-label': `Actions for ${whose}` },
            action('react', 'React to', 'React', (e) => openPicker(m.id, e.currentTarget)),
            action('reply', 'Reply to', 'Reply', () => startReply(m.id)),
            mine ? action('edit', 'Edit', 'Edit', () => startEdit(m.id)) : null,
            canDelete ? action('delete', 'Delete', 'Delete', () => askDeleteMessage(m.id)) : null)),
        el('div', { class: 'reactions', role: 'group', 'aria-label': `Reactions to ${whose}`, hidden: true }),
        el('p', { class: 'reaction-error inline-error', role: 'alert' }))),
    el('p', { class: 'receipt', hidden: true }));
}

// The message a reply answers, as it is now, above the reply's text; a click shows the original.
function quoteNode(r) {
  const who = state.me && r.sender === state.me.id ? 'You' : nameOf(r.sender);
  const parts = [
    el('span', { class: 'quote-sender', style: `--hue: ${hue(r.sender)}`, text: who }),
    el('span', { class: 'quote-text', text: r.deleted ? 'Deleted message' : snippet(r.text, 200) }),
  ];
  if (r.deleted) {
    return el('div', { class: 'quote deleted', 'data-reply-to': r.id, role: 'note', 'aria-label': `In reply to a deleted message from ${who}` }, ...parts);
  }
  return el('button', { class: 'quote', type: 'button', 'data-reply-to': r.id, title: 'Show the original message',
    'aria-label': `In reply to ${who}: “${snippet(r.text, 80)}”. Show the original message`,
    onclick: (e) => { e.stopPropagation(); showOriginal(r.id); } }, ...parts);
}

// On a touch screen there is no hover: tapping a message shows its buttons.
function toggleActions(e) {
  if (e.target.closest('a, .quote')) return;
  if (press.fired) { press.fired = false; return; } // the end of a long press, which opened the picker
  const li = e.currentTarget.closest('li.message');
  const on = !li.classList.contains('show-actions');
  for (const other of $('messages').querySelectorAll('.show-actions')) other.classList.remove('show-actions');
  li.classList.toggle('show-actions', on);
}

// A long press on a message, on a touch screen, opens the reaction picker (as phone apps do).
const press = { timer: null, x: 0, y: 0, at: 0, fired: false, id: null };
$('messages').addEventListener('pointerdown', (e) => {
  const bubble = e.pointerType === 'touch' && e.target.closest('li.message[data-message-id] .bubble');
  clearTimeout(press.timer);
  press.fired = false;
  if (!bubble || e.target.closest('a, .quote') || state.editing) { press.id = null; return; }
  Object.assign(press, { x: e.clientX, y: e.clientY, at: Date.now(), id: bubble.closest('li.message').dataset.messageId });
  press.timer = setTimeout(longPress, 500);
});
function longPress() {
  clearTimeout(press.timer);
  if (!press.id || press.fired) return;
  press.fired = true;
  if (navigator.vibrate) navigator.vibrate(10);
  openPicker(press.id, null);
}
$('messages').addEventListener('pointermove', (e) => {
  if (press.timer && Math.hypot(e.clientX - press.x, e.clientY - press.y) > 10) { clearTimeout(press.timer); press.id = null; }
});
for (const type of ['pointerup', 'pointercancel']) $('messages').addEventListener(type, () => clearTimeout(press.timer));
// The browser's own long-press menu would cover the picker.
$('messages').addEventListener('contextmenu', (e) => {
  if (!press.id || Date.now() - press.at > 2000 || !e.target.closest('.bubble')) return;
  e.preventDefault();
  longPress();
});

function outgoingNode(o, { first }, shown) {
  const r = o.replyTo;
  const sig = JSON.stringify([o.text, o.status, o.error, first, r ? [r.id, r.text, !!r.deleted, nameOf(r.sender)] : null, o.mentions]);
  return cached('o:' + o.clientId, sig, () => {
    const failed = o.status === 'failed';
    const quote = `“${snippet(o.text)}”`;
    return el('li', { class: 'message mine outgoing' + (first ? ' first' : '') + (failed ? ' failed' : ' pending'), 'data-client-id': o.clientId, 'data-state': failed ? 'failed' : 'pending', 'aria-busy': failed ? null : 'true' },
      el('div', { class: 'row' },
        el('div', { class: 'stack' },
          el('div', { class: 'bubble-wrap' },
            el('div', { class: 'bubble' },
              el('span', { class: 'sender visually-hidden', text: 'You' }),
              r ? quoteNode(r) : null,
              el('div', { class: 'text' }, richText(o.text, o.mentions)),
              el('div', { class: 'meta' },
                failed ? el('span', { class: 'status', 'aria-hidden': 'true', text: '!' }) : el('span', { class: 'status', text: 'Sending…' })))))),
      failed ? el('p', { class: 'send-error', role: 'alert' },
        el('span', { text: `Not sent: ${o.error} ` }),
        el('button', { class: 'retry link', type: 'button', 'aria-label': `Retry sending ${quote}`, onclick: () => { deliver(o); renderMessages(); }, text: 'Retry' }),
        ' · ',
        el('button', { class: 'discard link', type: 'button', 'aria-label': `Discard unsent message ${quote}`, onclick: () => { state.outbox.delete(o.clientId); renderMessages(); }, text: 'Discard' })) : null);
  }, shown);
}

// "Seen by bob" under the newest message each other participant has read (not under their
// own messages: a sender has read what they sent). If that message is not on screen (deleted,
// or older than what is loaded), the newest shown message before it carries the receipt.
function renderReceipts() {
  const rows = [...$('messages').querySelectorAll(':scope > li.message[data-message-id]')];
  const byMessage = new Map();
  const shown = rows.map((li) => li.dataset.messageId);
  for (const [user, read] of state.reads) {
    if (state.me && user === state.me.id) continue;
    const at = shown.filter((id) => seq(id) <= seq(read)).pop();
    if (!at || state.messages.get(at).sender === user) continue;
    if (!byMessage.has(at)) byMessage.set(at, []);
    byMessage.get(at).push(user);
  }
  for (const li of rows) {
    const receipt = li.querySelector(':scope > .receipt');
    if (!receipt) continue;
    const users = byMessage.get(li.dataset.messageId) || [];
    if (receipt.dataset.users === users.join(' ') && !receipt.hidden === users.length > 0) continue;
    receipt.textContent = users.length ? `Seen by ${users.map(nameOf).sort().join(', ')}` : '';
    receipt.dataset.users = users.join(' ');
    receipt.hidden = users.length === 0;
  }
}

// ---------------------------------------------------------------------------------------------
// Sending: the box is cleared at once and the message shows as being sent; it goes with a
// client_id, so a retry (by the person, or after a lost answer) can never send it twice.

const box = $('text');

function autosize() {
  box.style.height = 'auto';
  box.style.height = Math.min(box.scrollHeight, 160) + 'px';
}

box.addEventListener('keydown', (e) => {
  // Enter sends, Shift+Enter starts a new line; not while an input method is composing.
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && !PHONE.matches) {
    e.preventDefault();
    sendFromComposer();
  } else if (e.key === 'Escape' && state.replyTo) {
    e.preventDefault();
    cancelReply();
  }
});

// Tapping Send keeps the focus in the box, so a phone's keyboard stays up between messages.
$('send').addEventListener('mousedown', (e) => e.preventDefault());

$('composer').addEventListener('submit', (e) => {
  e.preventDefault();
  sendFromComposer();
  if (!PHONE.matches) box.focus();
});

function sendFromComposer() {
  const id = state.openId;
  const text = box.value;
  if (!id || !text.trim()) return;
  box.value = '';
  autosize();
  const replyTo = state.replyTo;
  cancelReply({ focus: false });
  closeCompletion();
  // Who the message mentions: the people of the thread whose "@name" is still in it (picked
  // from the completion, or typed out).
  const t = state.threads.get(id);
  const mentions = t ? mentionsIn(text, t.participants.filter((p) => p !== state.me.id)) : [];
  const o = { clientId: newClientId(), thread: id, text, replyTo, mentions, created: new Date().toISOString(), status: 'sending', error: null, matched: null };
  state.outbox.set(o.clientId, o);
  renderMessages({ scroll: 'bottom' });
  deliver(o);
}

async function deliver(o) {
  o.status = 'sending';
  o.error = null;
  try {
    const body = { text: o.text, client_id: o.clientId };
    if (o.replyTo) body.reply_to = o.replyTo.id;
    if (o.mentions && o.mentions.length) body.mentions = o.mentions;
    const m = await api('POST', `/api/threads/${enc(o.thread)}/messages/`, body);
    if (!state.outbox.delete(o.clientId)) return; // discarded meanwhile
    if (state.openId === o.thread) {
      holdMessage(m);
      renderMessages({ scroll: 'bottom' });
    }
    bumpThread(o.thread, m);
    refreshThread(o.thread);
  } catch (err) {
    if (!state.outbox.has(o.clientId)) return;
    const matched = o.matched;
    o.status = 'failed';
    o.error = reason(err);
    o.matched = null;
    // The message it answers was deleted meanwhile: nothing was stored, and a retry goes
    // without the quote.
    if (o.replyTo && err instanceof ApiError && err.status === 400 && err.body && err.body.reply_to) {
      o.replyTo = null;
      o.error = 'The message it answers was deleted. Retry sends it without the quote.';
    }
    // Someone it mentions left the conversation meanwhile: a retry mentions those still in it.
    if (o.mentions && o.mentions.length && err instanceof ApiError && err.status === 400 && err.body && err.body.mentions) {
      const t = state.threads.get(o.thread);
      o.mentions = t ? o.mentions.filter((p) => t.participants.includes(p)) : [];
      o.error = 'Someone it mentions is no longer in this conversation. Retry sends it without mentioning them.';
    }
    // The server sent us a message with this text meanwhile: probably this one, whose answer
    // was lost. Asking again with the same client_id settles it (200 with the original).
    if (matched && !o.retried && !(err instanceof ApiError && err.status < 500)) {
      o.retried = true;
      deliver(o);
    }
    if (state.openId === o.thread) renderMessages();
  }
}

// A live message of ours: if a send of the same text is still unanswered (or its answer was
// lost), that is probably it; show the real one in its place.
function matchOutgoing(m) {
  for (const o of state.outbox.values()) {
    if (o.thread === m.thread && o.text === m.text && !o.matched) {
      o.matched = m.id;
      if (o.status === 'failed' && !o.retried) { o.retried = true; deliver(o); }
      return;
    }
  }
}

// Typing: tell the others while the user types, throttled (the server drops extras anyway).
box.addEventListener('input', () => {
  autosize();
  const now = Date.now();
  if (!state.openId || !box.value || now - state.lastTypingSent < TYPING_SEND_MS) return;
  if (state.socket && state.socket.readyState === WebSocket.OPEN) {
    state.lastTypingSent = now;
    state.socket.send(JSON.stringify({ action: 'typing', thread: state.openId }));
  }
});

// ---------------------------------------------------------------------------------------------
// @-completion: "@" typed in the message box (or in an edit's) lists the conversation's people,
// narrowed as one types; ↑/↓ choose, Enter or Tab (or a click or tap) put "@name " in the text,
// and Escape closes the list. A send, or a save, mentions the people whose "@name" is in the
// text then (mentionsIn), so a mention deleted before sending is no mention.

const mentionList = $('mention-list');
// "@" and what follows it up to the caret, where a mention may start (not inside "me@example").
const MENTION_QUERY = new RegExp(`(?<!${NAME_CHAR}|@)@(${NAME_CHAR}{0,40})$`, 'u');

function watchForMentions(input) {
  input.setAttribute('aria-autocomplete', 'list');
  input.setAttribute('aria-haspopup', 'listbox');
  input.setAttribute('aria-controls', 'mention-list');
  input.setAttribute('aria-expanded', 'false');
  input.addEventListener('input', () => updateCompletion(input));
  input.addEventListener('click', () => updateCompletion(input));
  input.addEventListener('keyup', (e) => {
    if (['ArrowLeft', 'ArrowRight', 'Home', 'End'].includes(e.key)) updateCompletion(input);
  });
  input.addEventListener('blur', () => {
    setTimeout(() => {
      if (state.completion && state.completion.input === input && document.activeElement !== input) closeCompletion();
    }, 150);
  });
}

function updateCompletion(input) {
  const t = state.threads.get(state.openId);
  const caret = input.selectionStart;
  const match = t && caret === input.selectionEnd && document.activeElement === input
    ? MENTION_QUERY.exec(input.value.slice(0, caret)) : null;
  // Escape closed the list for this "@": it stays closed until another one is typed.
  if (!match || match.index === input.dismissedAt) {
    if (!match) input.dismissedAt = null;
    closeCompletion();
    return;
  }
  input.dismissedAt = null;
  const query = match[1].toLowerCase();
  const people = t.participants.filter((id) => id !== state.me.id)
    .map((id) => ({ id, name: usernameOf(id) })).filter((p) => p.name);
  const byName = (a, b) => a.name.localeCompare(b.name);
  const starts = people.filter((p) => p.name.toLowerCase().startsWith(query)).sort(byName);
  const inside = people.filter((p) => !starts.includes(p) && p.name.toLowerCase().includes(query)).sort(byName);
  const found = [...starts, ...inside].slice(0, 8);
  if (!found.length) { closeCompletion(); return; }
  const held = state.completion;
  const kept = held && held.input === input ? found.findIndex((p) => p.id === held.people[held.active].id) : -1;
  state.completion = { input, start: match.index, end: caret, query, people: found, active: Math.max(0, kept) };
  renderCompletion();
}

function renderCompletion() {
  const c = state.completion;
  if (!c) return;
  mentionList.replaceChildren(...c.people.map((p, i) => el('li', {
    id: `mention-option-${i}`, role: 'option', class: 'mention-option', 'data-user-id': p.id, 'data-username': p.name,
    onmousedown: (e) => e.preventDefault(), // the box keeps the focus (and a phone its keyboard)
    onmousemove: () => { if (c.active !== i) setActiveMention(i); },
    onclick: () => pickMention(i),
  }, avatar(p.id, 'small'), el('span', { class: 'name', text: p.name }))));
  mentionList.hidden = false;
  c.input.setAttribute('aria-expanded', 'true');
  setActiveMention(c.active);
  placeCompletion();
}

function setActiveMention(i) {
  const c = state.completion;
  if (!c) return;
  c.active = i;
  [...mentionList.children].forEach((li, n) => {
    li.classList.toggle('active', n === i);
    li.setAttribute('aria-selected', String(n === i));
  });
  c.input.setAttribute('aria-activedescendant', `mention-option-${i}`);
  const li = mentionList.children[i];
  if (li) li.scrollIntoView({ block: 'nearest' });
}

// Above the box (over the keyboard's edge on a phone), or below an edit's box when there is
// more room there; as wide as the box on a phone.
function placeCompletion() {
  const c = state.completion;
  if (!c || mentionList.hidden) return;
  if (!c.input.isConnected) { closeCompletion(); return; }
  const r = c.input.getBoundingClientRect();
  const view = window.visualViewport;
  const top = view ? view.offsetTop : 0;
  const bottom = view ? view.offsetTop + view.height : innerHeight;
  const margin = 8;
  const gap = 6;
  const phone = PHONE.matches;
  const width = phone ? innerWidth - 2 * margin : Math.min(320, Math.max(260, r.width));
  const left = phone ? margin : Math.min(Math.max(margin, r.left), innerWidth - width - margin);
  const above = r.top - top - gap - margin;
  const below = bottom - r.bottom - gap - margin;
  const up = c.input === box || above >= Math.min(below, 240);
  mentionList.style.width = `${width}px`;
  mentionList.style.left = `${left}px`;
  mentionList.style.maxHeight = `${Math.max(96, Math.min(up ? above : below, 280))}px`;
  const h = mentionList.offsetHeight;
  mentionList.style.top = `${up ? Math.max(top + margin, r.top - gap - h) : r.bottom + gap}px`;
}

function pickMention(i) {
  const c = state.completion;
  if (!c) return;
  const input = c.input;
  const person = c.people[i];
  const spaced = /^\s/.test(input.value.slice(c.end));
  input.setRangeText(`@${person.name}${spaced ? '' : ' '}`, c.start, c.end, 'end');
  if (spaced) input.setSelectionRange(input.selectionEnd + 1, input.selectionEnd + 1);
  closeCompletion();
  input.focus();
  input.dispatchEvent(new Event('input', { bubbles: true })); // sizes the box, says "typing"
}

function closeCompletion() {
  const c = state.completion;
  state.completion = null;
  mentionList.hidden = true;
  mentionList.replaceChildren();
  if (c) {
    c.input.setAttribute('aria-expanded', 'false');
    c.input.removeAttribute('aria-activedescendant');
  }
}

// Before the boxes' own keys (Enter sends, Escape cancels a reply or an edit): while the list
// is open, these keys are the list's.
document.addEventListener('keydown', (e) => {
  const c = state.completion;
  if (!c || e.target !== c.input || e.isComposing) return;
  const n = c.people.length;
  if (e.key === 'ArrowDown') setActiveMention((c.active + 1) % n);
  else if (e.key === 'ArrowUp') setActiveMention((c.active - 1 + n) % n);
  else if ((e.key === 'Enter' && !e.shiftKey) || (e.key === 'Tab' && !e.shiftKey)) pickMention(c.active);
  else if (e.key === 'Escape') {
    c.input.dismissedAt = c.start;
    closeCompletion();
  } else return;
  e.preventDefault();
  e.stopImmediatePropagation();
}, true);

watchForMentions(box);
pane.addEventListener('scroll', placeCompletion);
window.addEventListener('resize', placeCompletion);
if (window.visualViewport) window.visualViewport.addEventListener('resize', placeCompletion);

// ---------------------------------------------------------------------------------------------
// Replies: Reply quotes a message above the box, the send carries its id as `reply_to`, and a
// reply shows the message it answers as it is now (edited, or "Deleted message"); clicking the
// quote shows the original.

function previewOf(m) {
  return { id: m.id, sender: m.sender, text: Array.from(m.text).slice(0, 200).join(''), edited: m.edited, deleted: false };
}

function startReply(id) {
  const m = state.messages.get(id);
  if (!m) return;
  if (state.editing) endEdit(state.editing);
  state.replyTo = previewOf(m);
  for (const li of $('messages').querySelectorAll('.show-actions')) li.classList.remove('show-actions');
  renderReplying();
  box.focus();
}

function cancelReply({ focus = true } = {}) {
  if (!state.replyTo) return;
  state.replyTo = null;
  renderReplying();
  if (focus) box.focus();
}

function renderReplying() {
  const r = state.replyTo;
  const stick = state.openId && atBottom();
  $('replying').hidden = !r;
  if (r) {
    const who = state.me && r.sender === state.me.id ? 'yourself' : nameOf(r.sender);
    $('replying').style.setProperty('--hue', String(hue(r.sender)));
    $('replying-to').replaceChildren('Replying to ', el('strong', { text: who }));
    $('replying-text').textContent = snippet(r.text, 200);
    box.setAttribute('aria-describedby', 'replying');
    box.placeholder = 'Write a reply';
  } else {
    box.removeAttribute('aria-describedby');
    box.placeholder = 'Write a message';
  }
  if (stick) scrollToEnd(); // the box grew: the newest message stays in view
}

$('reply-cancel').addEventListener('click', () => cancelReply());

// Held replies show the message they answer as it is now. The server sends each reply again
// when that message changes; this keeps them right meanwhile, and the quote above the box too.
function followOriginal(id, m) {
  for (const held of state.messages.values()) {
    if (!held.reply_to || held.reply_to.id !== id) continue;
    held.reply_to = m
      ? { ...held.reply_to, text: previewOf(m).text, edited: m.edited }
      : { ...held.reply_to, text: '', edited: null, deleted: true };
  }
  if (state.replyTo && state.replyTo.id === id) {
    if (m) {
      state.replyTo = previewOf(m);
      renderReplying();
    } else {
      cancelReply({ focus: false });
      toast('The message you were replying to was deleted.');
    }
  }
}

// Scrolls to the original of a quote and highlights it for a moment; one older than what is
// loaded is looked for a few pages back.
async function showOriginal(id) {
  const find = () => $('messages').querySelector(`li.message[data-message-id="${CSS.escape(id)}"]`);
  let li = find();
  for (let i = 0; !li && state.olderUrl && i < 5; i++) {
    const was = state.olderUrl;
    await loadOlder();
    if (state.olderUrl === was) break; // failed, or already loading
    li = find();
  }
  if (!li) {
    toast('The original message is not loaded. Scroll up to find it.');
    return;
  }
  const r = li.getBoundingClientRect();
  const p = pane.getBoundingClientRect();
  const behavior = matchMedia('(prefers-reduced-motion: reduce)').matches ? 'auto' : 'smooth';
  pane.scrollTo({ top: pane.scrollTop + r.top - p.top - Math.max(16, (p.height - r.height) / 2), behavior });
  li.classList.remove('flash');
  void li.offsetWidth; // restarts the animation
  li.classList.add('flash');
  clearTimeout(li.flashTimer);
  li.flashTimer = setTimeout(() => li.classList.remove('flash'), 2000);
  const bubble = li.querySelector('.bubble');
  if (bubble) bubble.focus({ preventScroll: true });
}

// ---------------------------------------------------------------------------------------------
// Reactions: chips under a message (the emoji, how many, highlighted when one is mine, a title
// saying who); a click on one toggles mine, and the picker adds any emoji. A change shows at
// once and the answer settles it; others' changes come as message.updated events, whose
// reactions say who reacted but not whether I did, so "mine" is always read from `users`.

// "❤" and "❤️" are one reaction to the server.
const bare = (emoji) => String(emoji).replace(/[\uFE0E\uFE0F]/g, '');

// `reactions` with my reaction `emoji` added (on) or taken away, as the server does it.
function withMine(reactions, emoji, on) {
  const me = state.me.id;
  const out = reactions.map((r) => ({ emoji: r.emoji, users: [...(r.users || [])] }));
  const i = out.findIndex((r) => bare(r.emoji) === bare(emoji));
  if (on && i < 0) out.push({ emoji, users: [me] });
  else if (on && !out[i].users.includes(me)) out[i].users.push(me);
  else if (!on && i >= 0) {
    out[i].users = out[i].users.filter((u) => u !== me);
    if (!out[i].users.length) out.splice(i, 1);
  }
  return out;
}

// A message's reactions as drawn: as held, with the changes still under way.
function shownReactions(m) {
  let list = (m.reactions || []).map((r) => ({ emoji: r.emoji, users: Array.isArray(r.users) ? r.users : [] }));
  const pending = state.reacting.get(m.id);
  if (pending) for (const op of pending.values()) list = withMine(list, op.emoji, op.on);
  return list;
}

function isMine(m, emoji) {
  const r = shownReactions(m).find((x) => bare(x.emoji) === bare(emoji));
  return !!r && r.users.includes(state.me.id);
}

// "You, alice and bob": me first, then the others in the order they reacted.
function people(users) {
  const me = state.me && state.me.id;
  const names = [...users.filter((u) => u === me).map(() => 'You'), ...users.filter((u) => u !== me).map(nameOf)];
  const shown = names.length > 12 ? [...names.slice(0, 10), `${names.length - 10} others`] : names;
  return shown.length <= 1 ? shown.join('') : `${shown.slice(0, -1).join(', ')} and ${shown[shown.length - 1]}`;
}

// The chips under a message, updated in place so that a focused chip keeps its focus.
function fillReactions(li, m) {
  const row = li.querySelector('.reactions');
  if (!row) return;
  const list = shownReactions(m);
  const pending = state.reacting.get(m.id);
  const error = state.reactionErrors.get(m.id);
  const sig = JSON.stringify([list.map((r) => [r.emoji, r.users.map(nameOf)]), pending ? [...pending.keys()] : [], error ? error.text : '']);
  if (row.sig === sig) return;
  row.sig = sig;
  const held = new Map([...row.querySelectorAll('button.reaction')].map((b) => [b.dataset.emoji, b]));
  const chips = list.map((r) => {
    const chip = held.get(r.emoji) || el('button', { class: 'reaction', type: 'button', 'data-emoji': r.emoji, onclick: () => toggleReaction(m.id, r.emoji) },
      el('span', { class: 'emoji', 'aria-hidden': 'true' }), el('span', { class: 'count' }));
    const mine = r.users.includes(state.me.id);
    chip.querySelector('.emoji').textContent = r.emoji;
    chip.querySelector('.count').textContent = String(r.users.length);
    chip.setAttribute('aria-pressed', String(mine));
    chip.setAttribute('aria-label', `${r.emoji} ${r.users.length}: ${people(r.users)}`);
    chip.title = `${people(r.users)} reacted with ${r.emoji}`;
    chip.classList.toggle('pending', !!pending && pending.has(bare(r.emoji)));
    return chip;
  });
  const whose = m.sender === state.me.id ? 'your message' : `${nameOf(m.sender)}'s message`;
  const add = row.querySelector('.add-reaction')
    || el('button', { class: 'add-reaction', type: 'button', title: 'Add a reaction', 'aria-label': `Add a reaction to ${whose}`, onclick: (e) => openPicker(m.id, e.currentTarget) }, icon('react', 16));
  reconcile(row, list.length ? [...chips, add] : []);
  row.hidden = !list.length;
  li.querySelector('.reaction-error').textContent = error ? error.text : '';
}

function setReactionError(id, text) {
  const held = state.reactionErrors.get(id);
  if (held) clearTimeout(held.timer);
  state.reactionErrors.delete(id);
  if (text) state.reactionErrors.set(id, { text, timer: setTimeout(() => { state.reactionErrors.delete(id); renderMessages(); }, 10000) });
}

function toggleReaction(id, emoji) {
  const m = state.messages.get(id);
  if (m) react(m, emoji, !isMine(m, emoji));
}

// PUT or DELETE .../reactions/<emoji>/ (both idempotent). Mine is drawn changed at once; the
// answer says how it ended, and a failure says why beside the message.
async function react(m, emoji, on) {
  const { id, thread } = m;
  if (!state.reacting.has(id)) state.reacting.set(id, new Map());
  const op = { emoji, on };
  state.reacting.get(id).set(bare(emoji), op);
  setReactionError(id, null);
  renderMessages();
  let answer = null;
  let error = null;
  try {
    answer = await api(on ? 'PUT' : 'DELETE', `/api/threads/${enc(thread)}/messages/${enc(id)}/reactions/${enc(emoji)}/`);
  } catch (err) {
    error = err;
  }
  const pending = state.reacting.get(id);
  if (!pending || pending.get(bare(emoji)) !== op) return; // changed again meanwhile: that one settles it
  pending.delete(bare(emoji));
  if (!pending.size) state.reacting.delete(id);
  if (state.openId !== thread) return;
  const held = state.messages.get(id);
  if (answer && held) {
    // Mine as the answer says; the others' as held, which an event may have made newer.
    const r = (answer.reactions || []).find((x) => bare(x.emoji) === bare(emoji));
    held.reactions = withMine(held.reactions || [], r ? r.emoji : emoji, !!r && (r.users || []).includes(state.me.id));
  } else if (error && held) {
    const why = error instanceof ApiError && error.status === 404 ? 'That is not an emoji a reaction can have.' : reason(error);
    setReactionError(id, `Couldn't ${on ? 'react with' : 'take back'} ${emoji}: ${why}`);
  }
  renderMessages();
}

// The picker: the common reactions, and more to search (by name) or type.
const QUICK_EMOJI = [['👍', 'thumbs up'], ['❤️', 'red heart'], ['😂', 'face with tears of joy'], ['😮', 'face with open mouth'], ['😢', 'crying face'], ['🎉', 'party popper']];
const MORE_EMOJI = [
  ['😀', 'grinning face', 'smile happy'], ['😄', 'grinning face with smiling eyes', 'smile happy laugh'], ['😁', 'beaming face', 'grin smile'],
  ['😅', 'grinning face with sweat', 'phew nervous'], ['🤣', 'rolling on the floor laughing', 'lol rofl'], ['😂', 'face with tears of joy', 'laugh lol haha'],
  ['🙂', 'slightly smiling face', 'smile'], ['😉', 'winking face', 'wink'], ['😊', 'smiling face with smiling eyes', 'blush happy'],
  ['😇', 'smiling face with halo', 'angel innocent'], ['🥰', 'smiling face with hearts', 'love'], ['😍', 'smiling face with heart-eyes', 'love'],
  ['😘', 'face blowing a kiss', 'kiss love'], ['😋', 'face savoring food', 'yum tasty'], ['😎', 'smiling face with sunglasses', 'cool'],
  ['🤩', 'star-struck', 'wow amazing'], ['🥳', 'partying face', 'party celebrate'], ['🤗', 'hugging face', 'hug'],
  ['🤔', 'thinking face', 'think hmm'], ['🤨', 'face with raised eyebrow', 'doubt skeptical'], ['😐', 'neutral face', 'meh'],
  ['🙄', 'face with rolling eyes', 'eyeroll'], ['😏', 'smirking face', 'smirk'], ['😬', 'grimacing face', 'awkward oops'],
  ['😌', 'relieved face', 'relief'], ['😴', 'sleeping face', 'sleep tired zzz'], ['😷', 'face with medical mask', 'sick ill'],
  ['🤯', 'exploding head', 'mind blown'], ['😮', 'face with open mouth', 'wow surprise'], ['😱', 'face screaming in fear', 'scream shock'],
  ['😢', 'crying face', 'sad tear'], ['😭', 'loudly crying face', 'sob sad'], ['😤', 'face with steam from nose', 'triumph frustrated'],
  ['😡', 'enraged face', 'angry mad'], ['🥺', 'pleading face', 'please puppy'], ['🫡', 'saluting face', 'salute yes sir'],
  ['👍', 'thumbs up', 'yes like agree ok +1'], ['👎', 'thumbs down', 'no dislike disagree -1'], ['👏', 'clapping hands', 'clap applause bravo'],
  ['🙌', 'raising hands', 'hooray celebrate'], ['🙏', 'folded hands', 'please thanks pray'], ['👌', 'OK hand', 'ok perfect'],
  ['✌️', 'victory hand', 'peace'], ['🤞', 'crossed fingers', 'luck hope'], ['💪', 'flexed biceps', 'strong'],
  ['👋', 'waving hand', 'hello hi bye wave'], ['🤝', 'handshake', 'deal agree'], ['👀', 'eyes', 'look see watching'],
  ['❤️', 'red heart', 'love like'], ['🧡', 'orange heart', 'love'], ['💛', 'yellow heart', 'love'], ['💚', 'green heart', 'love'],
  ['💙', 'blue heart', 'love'], ['💜', 'purple heart', 'love'], ['💔', 'broken heart', 'sad'], ['🔥', 'fire', 'hot lit'],
  ['✨', 'sparkles', 'shiny new'], ['⭐', 'star', 'favourite favorite'], ['💯', 'hundred points', '100 perfect'], ['✅', 'check mark button', 'done yes ok tick'],
  ['❌', 'cross mark', 'no wrong x'], ['❓', 'red question mark', 'question what'], ['❗', 'red exclamation mark', 'important'], ['🎉', 'party popper', 'tada celebrate congrats'],
  ['🎂', 'birthday cake', 'birthday'], ['🚀', 'rocket', 'launch ship fast'], ['💡', 'light bulb', 'idea'], ['☕', 'hot beverage', 'coffee tea'],
  ['🍕', 'pizza', 'food'], ['🍻', 'clinking beer mugs', 'cheers drinks'], ['🏆', 'trophy', 'win winner'], ['📌', 'pushpin', 'pin'],
];

const picker = $('reaction-picker');
const graphemes = window.Intl && Intl.Segmenter ? new Intl.Segmenter(undefined, { granularity: 'grapheme' }) : null;

// Whether `text` is one emoji, as a person would type or paste it.
function oneEmoji(text) {
  if (!text || !/\p{Extended_Pictographic}|\p{Regional_Indicator}|\u20E3/u.test(text)) return false;
  return graphemes ? [...graphemes.segment(text)].length === 1 : Array.from(text).length <= 8;
}

function pickButton(m, emoji, name) {
  return el('button', { class: 'pick', type: 'button', 'data-emoji': emoji, title: name, 'aria-label': name, 'aria-pressed': String(isMine(m, emoji)), onclick: () => pick(emoji) },
    el('span', { class: 'emoji', 'aria-hidden': 'true', text: emoji }));
}

function openPicker(messageId, opener) {
  const m = state.messages.get(messageId);
  if (!m) return;
  if (picker.open) picker.close();
  state.picker = { messageId, opener };
  $('picker-quick').replaceChildren(...QUICK_EMOJI.map(([e, name]) => pickButton(m, e, name)),
    el('button', { id: 'picker-more-button', class: 'pick more', type: 'button', title: 'More emoji', 'aria-label': 'More emoji', 'aria-expanded': 'false', 'aria-controls': 'picker-more', onclick: toggleMore }, icon('plus', 20)));
  $('picker-more').hidden = true;
  $('picker-search').value = '';
  fillGrid();
  const sheet = PHONE.matches;
  picker.classList.toggle('sheet', sheet);
  picker.style.top = picker.style.left = '';
  // Its message keeps its buttons shown while the picker is open.
  const li = $('messages').querySelector(`li.message[data-message-id="${CSS.escape(messageId)}"]`);
  if (li) li.classList.add('picking');
  if (sheet) picker.showModal();
  else { picker.show(); placePicker(); }
  $('picker-quick').querySelector('button').focus();
}

function closePicker(restoreFocus = true) {
  const was = state.picker;
  state.picker = null;
  if (!picker.open) return;
  const hadFocus = picker.contains(document.activeElement);
  picker.close();
  if (!restoreFocus || !hadFocus || !was) return;
  // Back to what opened it, or to the message if that is gone or hidden.
  const li = $('messages').querySelector(`li.message[data-message-id="${CSS.escape(was.messageId)}"]`);
  const back = was.opener && was.opener.isConnected ? was.opener : li && li.querySelector('.actions .react');
  if (back) back.focus({ preventScroll: true });
  if (li && document.activeElement !== back) li.querySelector('.bubble').focus({ preventScroll: true });
}

picker.addEventListener('close', () => {
  state.picker = null;
  for (const li of $('messages').querySelectorAll('.picking')) li.classList.remove('picking');
});

// Beside the message's React button (above it if there is room), inside the window.
function placePicker() {
  if (!picker.open || picker.classList.contains('sheet') || !state.picker) return;
  const li = $('messages').querySelector(`li.message[data-message-id="${CSS.escape(state.picker.messageId)}"]`);
  if (!li) { closePicker(false); return; }
  const opener = state.picker.opener && state.picker.opener.isConnected ? state.picker.opener : li.querySelector('.actions .react');
  const a = (opener && opener.getBoundingClientRect().width ? opener : li.querySelector('.bubble')).getBoundingClientRect();
  const p = pane.getBoundingClientRect();
  if (a.bottom < p.top || a.top > p.bottom) { closePicker(false); return; } // scrolled away
  const margin = 8;
  const gap = 6;
  const w = picker.offsetWidth;
  const h = picker.offsetHeight;
  let top = a.top - h - gap;
  if (top < margin) top = Math.min(a.bottom + gap, innerHeight - h - margin);
  const left = Math.min(Math.max(margin, a.left + a.width / 2 - w / 2), innerWidth - w - margin);
  picker.style.top = `${Math.max(margin, top)}px`;
  picker.style.left = `${left}px`;
}

function pick(emoji) {
  const id = state.picker && state.picker.messageId;
  const m = id && state.messages.get(id);
  closePicker();
  if (m) react(m, emoji, !isMine(m, emoji));
}

function toggleMore() {
  const more = $('picker-more');
  const open = more.hidden;
  more.hidden = !open;
  $('picker-more-button').setAttribute('aria-expanded', String(open));
  placePicker();
  if (!open) return;
  // On a phone the search would bring up the keyboard over the emoji: the first emoji instead.
  if (PHONE.matches) $('picker-grid').querySelector('button').focus();
  else $('picker-search').focus();
}

function fillGrid() {
  const m = state.picker && state.messages.get(state.picker.messageId);
  if (!m) return;
  const q = $('picker-search').value.trim();
  const words = q.toLowerCase().split(/\s+/).filter(Boolean);
  let items;
  if (oneEmoji(q)) {
    const known = MORE_EMOJI.find(([e]) => bare(e) === bare(q));
    items = [[q, known ? known[1] : `React with ${q}`]];
  } else {
    items = MORE_EMOJI.filter(([, name, also]) => words.every((w) => `${name} ${also}`.toLowerCase().includes(w)));
  }
  $('picker-grid').replaceChildren(...items.map(([e, name]) => pickButton(m, e, name)));
  $('picker-empty').textContent = items.length ? '' : `No emoji found for “${q}”. You can also type or paste one.`;
}

$('picker-search').addEventListener('input', fillGrid);
$('picker-search').addEventListener('keydown', (e) => {
  const first = $('picker-grid').querySelector('button');
  if (e.key === 'Enter') {
    e.preventDefault();
    if (first) first.click();
  } else if (e.key === 'ArrowDown' && first) {
    e.preventDefault();
    first.focus();
  }
});

// Escape closes; the arrow keys move between the emoji, row by row.
picker.addEventListener('keydown', (e) => {
  if (e.key === 'Escape') {
    e.preventDefault();
    e.stopPropagation();
    closePicker();
    return;
  }
  if (!e.key.startsWith('Arrow') || e.target.id === 'picker-search') return;
  const buttons = [...picker.querySelectorAll('button.pick')].filter((b) => b.offsetParent !== null);
  const at = buttons.indexOf(document.activeElement);
  if (at < 0) return;
  e.preventDefault();
  const rect = (b) => b.getBoundingClientRect();
  const middle = (b) => rect(b).left + rect(b).width / 2;
  let next = null;
  if (e.key === 'ArrowLeft') next = buttons[at - 1];
  else if (e.key === 'ArrowRight') next = buttons[at + 1];
  else {
    const here = rect(buttons[at]);
    const down = e.key === 'ArrowDown';
    const beyond = buttons.filter((b) => (down ? rect(b).top > here.top + 2 : rect(b).top < here.top - 2));
    if (beyond.length) {
      const rowTop = (down ? Math.min : Math.max)(...beyond.map((b) => rect(b).top));
      const row = beyond.filter((b) => Math.abs(rect(b).top - rowTop) < 2);
      const x = here.left + here.width / 2;
      next = row.reduce((best, b) => (Math.abs(middle(b) - x) < Math.abs(middle(best) - x) ? b : best));
    } else if (!down && !$('picker-more').hidden && $('picker-grid').contains(buttons[at])) {
      next = $('picker-search');
    }
  }
  if (next) next.focus();
});

// A tap on the sheet's backdrop closes it (one that started there: the end of the long press
// that opened it does not).
let downOnBackdrop = false;
picker.addEventListener('pointerdown', (e) => { downOnBackdrop = e.target === picker; });
picker.addEventListener('click', (e) => {
  if (e.target === picker && downOnBackdrop) closePicker();
  downOnBackdrop = false;
});
pane.addEventListener('scroll', placePicker);
window.addEventListener('resize', placePicker);

// ---------------------------------------------------------------------------------------------
// Editing and deleting messages

function startEdit(id) {
  if (state.editing) endEdit(state.editing);
  const m = state.messages.get(id);
  const li = $('messages').querySelector(`[data-message-id="${CSS.escape(id)}"]`);
  if (!m || !li) return;
  state.editing = id;
  const input = el('textarea', { class: 'edit-text', maxlength: 10000, rows: 2, 'aria-label': `New text for your message “${snippet(m.text)}”` });
  input.value = m.text;
  const error = el('p', { class: 'inline-error', role: 'alert' });
  const save = el('button', { class: 'save primary small', type: 'submit', text: 'Save' });
  const form = el('form', { class: 'edit-form' }, input, error,
    el('div', { class: 'edit-actions' },
      el('span', { class: 'hint', text: 'Enter to save · Esc to cancel' }),
      el('button', { class: 'cancel ghost small', type: 'button', text: 'Cancel', onclick: () => endEdit(id) }),
      save));
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') { e.preventDefault(); endEdit(id); }
    else if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); form.requestSubmit(); }
  });
  watchForMentions(input);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const text = input.value;
    if (!text.trim()) { error.textContent = 'A message cannot be empty. Delete it instead.'; return; }
    // The thread's people named in the text, and those it mentioned already who have left it
    // since (an edit may keep their mention, not add one).
    const t = state.threads.get(m.thread);
    const candidates = [...new Set([...(t ? t.participants : []), ...(m.mentions || [])])].filter((p) => p !== state.me.id);
    const mentions = mentionsIn(text, candidates);
    const same = (a, b) => a.length === b.length && a.every((x) => b.includes(x));
    if (text === m.text && same(mentions, m.mentions || [])) { endEdit(id); return; }
    save.disabled = true;
    error.textContent = '';
    closeCompletion();
    try {
      const updated = await api('PATCH', `/api/threads/${enc(m.thread)}/messages/${enc(id)}/`, { text, mentions });
      if (state.messages.has(id)) holdMessage(updated);
      endEdit(id);
      refreshThread(updated.thread);
    } catch (err) {
      if (err.status === 404) { forgetMessage(id); renderMessages(); return; }
      error.textContent = `Not saved: ${reason(err)}`;
      save.disabled = false;
    }
  });
  li.classList.add('editing');
  li.querySelector('.bubble').replaceChildren(form);
  input.focus();
  input.setSelectionRange(input.value.length, input.value.length);
}

function endEdit(id) {
  if (state.editing !== id) return;
  state.editing = null;
  if (state.completion && state.completion.input !== box) closeCompletion();
  state.nodes.delete('m:' + id);
  renderMessages({ scroll: 'keep' });
  const bubble = $('messages').querySelector(`[data-message-id="${CSS.escape(id)}"] .bubble`);
  if (bubble) bubble.focus();
}

function askDeleteMessage(id) {
  const m = state.messages.get(id);
  if (!m) return;
  const thread = state.openId;
  confirmAction({
    title: 'Delete message?',
    text: 'It will be deleted for everyone in this conversation.',
    quote: m.text,
    ok: 'Delete',
    busy: 'Deleting…',
    action: async () => {
      try {
        await api('DELETE', `/api/threads/${enc(thread)}/messages/${enc(id)}/`);
      } catch (err) {
        if (err.status !== 404) throw err; // gone already is what was asked
      }
      if (state.openId === thread) { forgetMessage(id); renderMessages(); }
      refreshThread(thread);
    },
  });
}

// ---------------------------------------------------------------------------------------------
// A confirmation dialog that runs the action itself, so a failure shows inside it, beside the
// button that failed, and the dialog closes only once the action succeeded.

function confirmAction({ title, text, quote, ok, busy, action }) {
  const dialog = $('confirm');
  $('confirm-title').textContent = title;
  $('confirm-text').textContent = text;
  $('confirm-quote').textContent = quote ? snippet(quote, 200) : '';
  $('confirm-quote').hidden = !quote;
  $('confirm-error').textContent = '';
  const okButton = $('confirm-ok');
  okButton.textContent = ok;
  okButton.disabled = false;
  dialog.onsubmit = async (e) => {
    e.preventDefault();
    okButton.disabled = true;
    okButton.textContent = busy;
    $('confirm-error').textContent = '';
    try {
      await action();
      dialog.close();
    } catch (err) {
      $('confirm-error').textContent = `${ok} failed: ${reason(err)}`;
      okButton.textContent = ok;
      okButton.disabled = false;
    }
  };
  dialog.showModal();
  $('confirm-cancel').focus();
}

$('confirm-cancel').addEventListener('click', () => $('confirm').close());

// ---------------------------------------------------------------------------------------------
// The conversation menu, for the open conversation ("⋮" in its header) or for one in the list
// (its options button, a right-click, or a long press on a phone), so that a chat can be muted
// or archived without opening it, which would read it: mute (for a while, or until unmuted),
// archive, and leave or delete. The owner deletes a conversation for everyone; others leave (a
// thread keeps two participants, so in a direct chat only its owner can end it).


function renderMenu(t) {
  const mine = t.owner === state.me.id;
  const canLeave = !mine && t.participants.length > 2;
  const muted = isMuted(t);
  $('mute-thread').hidden = muted;
  $('unmute-thread').hidden = !muted;
  $('unmute-until').textContent = muted && t.muted_until ? `Muted until ${untilText(t.muted_until)}` : muted ? 'Muted until you unmute' : '';
  $('archive-thread').hidden = !!t.archived;
  $('unarchive-thread').hidden = !t.archived;
  $('leave-thread').hidden = !canLeave;
  $('delete-thread').hidden = !mine;
  const note = $('menu-note');
  note.textContent = mine
    ? ''
    : canLeave ? '' : `Only ${nameOf(t.owner)} can delete this conversation.`;
  note.hidden = !note.textContent;
}

// Opens the menu for thread `id` beside `opener` (the button that opened it, which gets the
// focus back), or at the point (x, y) of a right-click or a long press.
function openMenu(id, opener, at) {
  const t = state.threads.get(id);
  if (!t) return;
  closeMenu(false);
  state.menuThread = id;
  state.menuOpener = opener;
  state.menuAt = at || null;
  renderMenu(t);
  showMuteOptions(false);
  menu.hidden = false;
  opener.setAttribute('aria-expanded', 'true');
  // The chat it is for stays marked (with its options button shown, when that opened it).
  const row = opener.closest('li.thread');
  if (row) row.classList.add(at ? 'menu-target' : 'menu-open');
  placeMenu();
  const first = menuItems()[0];
  if (first) first.focus({ preventScroll: true });
}

function closeMenu(restoreFocus = false) {
  const opener = state.menuOpener;
  menu.hidden = true;
  state.menuThread = null;
  state.menuOpener = null;
  state.menuAt = null;
  for (const li of $('threads').querySelectorAll('.menu-open, .menu-target')) li.classList.remove('menu-open', 'menu-target');
  showMuteOptions(false);
  if (!opener) return;
  opener.setAttribute('aria-expanded', 'false');
  if (restoreFocus && opener.isConnected) opener.focus({ preventScroll: true });
}

// Below its button (right-aligned), or above it when there is no room below; inside the window.
function placeMenu() {
  if (menu.hidden || !state.menuOpener) return;
  const margin = 8;
  const w = menu.offsetWidth;
  const h = menu.offsetHeight;
  const a = state.menuAt
    ? { left: state.menuAt.x, right: state.menuAt.x + w, top: state.menuAt.y, bottom: state.menuAt.y }
    : state.menuOpener.getBoundingClientRect();
  let top = a.bottom + 4;
  if (top + h > innerHeight - margin) top = Math.max(margin, a.top - h - 4);
  const left = state.menuAt ? a.left : a.right - w;
  menu.style.top = `${top}px`;
  menu.style.left = `${Math.min(Math.max(margin, left), innerWidth - w - margin)}px`;
}

// The items a person can reach now (the menu's, or the mute durations').
function menuItems() {
  return [...menu.querySelectorAll('button')].filter((b) => b.offsetParent !== null);
}

$('thread-menu-button').addEventListener('click', (e) => {
  e.stopPropagation();
  const button = e.currentTarget;
  if (!menu.hidden && state.menuOpener === button) closeMenu();
  else if (state.openId) openMenu(state.openId, button);
});

// A chat in the list: its options button (shown on hover or focus), a right-click, or a long
// press on a touch screen.
$('threads').addEventListener('click', (e) => {
  const button = e.target.closest('button.row-menu');
  if (!button) return;
  e.stopPropagation();
  const id = button.closest('li.thread').dataset.threadId;
  if (!menu.hidden && state.menuThread === id) closeMenu();
  else openMenu(id, button);
});

$('threads').addEventListener('contextmenu', (e) => {
  const li = e.target.closest('li.thread');
  if (!li) return;
  e.preventDefault();
  clearTimeout(rowPress.timer);
  // A long press fires contextmenu too: the click that ends it opens nothing.
  if (rowPress.touching) rowPress.fired = true;
  // From the keyboard's menu key: beside the chat's options button, not at the corner.
  const pointed = rowPress.touching || e.button === 2;
  openMenu(li.dataset.threadId, li.querySelector('button.row-menu'), pointed ? { x: e.clientX, y: e.clientY } : null);
});

const rowPress = { timer: null, x: 0, y: 0, fired: false, touching: false };
$('threads').addEventListener('pointerdown', (e) => {
  const li = e.pointerType === 'touch' && e.target.closest('li.thread');
  clearTimeout(rowPress.timer);
  rowPress.fired = false;
  rowPress.touching = !!li;
  if (!li) return;
  Object.assign(rowPress, { x: e.clientX, y: e.clientY });
  rowPress.timer = setTimeout(() => {
    rowPress.fired = true;
    if (navigator.vibrate) navigator.vibrate(10);
    openMenu(li.dataset.threadId, li.querySelector('button.row-menu'), { x: rowPress.x, y: rowPress.y });
  }, 500);
});
$('threads').addEventListener('pointermove', (e) => {
  if (rowPress.timer && Math.hypot(e.clientX - rowPress.x, e.clientY - rowPress.y) > 10) clearTimeout(rowPress.timer);
});
for (const type of ['pointerup', 'pointercancel']) $('threads').addEventListener(type, () => clearTimeout(rowPress.timer));
// The end of a long press is a click on the chat: it opens nothing.
$('threads').addEventListener('click', (e) => {
  if (rowPress.fired && e.target.closest('button.open')) { e.stopPropagation(); e.preventDefault(); }
  rowPress.fired = false;
  rowPress.touching = false;
}, true);

$('sidebar').querySelector('.threads-scroll').addEventListener('scroll', () => { if (state.menuAt === null) placeMenu(); else closeMenu(); });
window.addEventListener('resize', placeMenu);

// Mute's durations take the menu's place, with a way back.
function showMuteOptions(on) {
  $('menu-main').hidden = on;
  $('mute-options').hidden = !on;
  $('mute-thread').setAttribute('aria-expanded', String(on));
  if (on) $('mute-options').querySelector('.mute-for').focus();
  placeMenu();
}

$('mute-thread').addEventListener('click', (e) => { e.stopPropagation(); showMuteOptions(true); });
$('mute-back').addEventListener('click', (e) => { e.stopPropagation(); showMuteOptions(false); $('mute-thread').focus(); });

// ↑ and ↓ move through the menu (wrapping), Home and End to its ends; → opens the durations
// and ← goes back from them.
menu.addEventListener('keydown', (e) => {
  const items = menuItems();
  const at = items.indexOf(document.activeElement);
  let next = null;
  if (e.key === 'ArrowDown') next = items[(at + 1) % items.length];
  else if (e.key === 'ArrowUp') next = items[(at - 1 + items.length) % items.length];
  else if (e.key === 'Home') next = items[0];
  else if (e.key === 'End') next = items[items.length - 1];
  else if (e.key === 'ArrowRight' && document.activeElement === $('mute-thread')) { e.preventDefault(); showMuteOptions(true); return; }
  else if (e.key === 'ArrowLeft' && !$('mute-options').hidden) { e.preventDefault(); showMuteOptions(false); $('mute-thread').focus(); return; }
  else if (e.key === 'Escape' && !$('mute-options').hidden) {
    e.preventDefault();
    e.stopPropagation();
    showMuteOptions(false);
    $('mute-thread').focus();
    return;
  } else return;
  e.preventDefault();
  if (next) next.focus();
});

const MUTE_FOR = { '1h': 3600e3, '8h': 8 * 3600e3, '1d': 24 * 3600e3 };

for (const button of $('mute-options').querySelectorAll('.mute-for')) {
  button.addEventListener('click', () => {
    const ms = MUTE_FOR[button.dataset.for];
    // For a while: until then (the server ends it by itself); else until unmuted.
    const body = ms ? { muted_until: new Date(Date.now() + ms).toISOString() } : { muted: true };
    changeView(state.menuThread, body, 'mute');
  });
}
$('unmute-thread').addEventListener('click', () => changeView(state.menuThread, { muted: false }, 'unmute'));
$('archive-thread').addEventListener('click', () => changeView(state.menuThread, { archived: true }, 'archive'));
$('unarchive-thread').addEventListener('click', () => changeView(state.menuThread, { archived: false }, 'unarchive'));

// PATCH /api/threads/{id}/me/: my own view of a thread. The answer is the thread as I now see
// it; my other pages and devices hear of it as member.updated. Muting moves my totals, so they
// are fetched again (as unread.changed may also bring them).
async function changeView(id, body, what) {
  closeMenu(true);
  if (!id) return;
  try {
    const t = await api('PATCH', `/api/threads/${enc(id)}/me/`, body);
    touchThread(id);
    setThread(t);
    renderThreads();
    if (id === state.openId) renderOpenTitle();
    loadTotalsSoon();
    if (what === 'archive') toast('Chat archived.', { label: 'Undo', run: () => changeView(id, { archived: false }, 'undo') });
    else if (what === 'unarchive') toast('Chat unarchived: it is back in your list.');
    else if (what === 'mute') toast(t.muted_until ? `Muted until ${untilText(t.muted_until)}.` : 'Muted until you unmute.');
    else if (what === 'unmute') toast('Unmuted.');
  } catch (err) {
    if (err.status === 404) { dropThread(id); return; }
    const verb = { mute: 'mute', unmute: 'unmute', archive: 'archive', unarchive: 'unarchive', undo: 'unarchive' }[what] || 'change';
    toast(`Couldn't ${verb} the conversation: ${reason(err)}`);
  }
}

document.addEventListener('click', (e) => {
  if (!menu.hidden && !menu.contains(e.target)) closeMenu();
  if (state.completion && !e.target.closest('#mention-list') && e.target !== state.completion.input) closeCompletion();
  // A click anywhere else closes the reaction picker (on a phone, its backdrop does).
  if (picker.open && !picker.classList.contains('sheet') && !picker.contains(e.target) && !e.target.closest('.react, .add-reaction')) {
    closePicker(false);
  }
  if (!e.target.closest('li.message')) {
    for (const li of $('messages').querySelectorAll('.show-actions')) li.classList.remove('show-actions');
  }
});

document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && !menu.hidden) closeMenu(true);
  else if (e.key === 'Escape' && picker.open) closePicker(false);
});

$('leave-thread').addEventListener('click', () => {
  const id = state.menuThread;
  closeMenu();
  const t = state.threads.get(id);
  if (!t) return;
  confirmAction({
    title: 'Leave conversation?',
    text: `You will no longer see “${threadTitle(t)}” or get its messages. Someone in it can add you again.`,
    ok: 'Leave',
    busy: 'Leaving…',
    action: async () => {
      await api('POST', `/api/threads/${enc(id)}/leave/`);
      dropThread(id);
      toast(`You left “${threadTitle(t)}”.`);
    },
  });
});

$('delete-thread').addEventListener('click', () => {
  const id = state.menuThread;
  closeMenu();
  const t = state.threads.get(id);
  if (!t) return;
  confirmAction({
    title: 'Delete conversation?',
    text: `“${threadTitle(t)}” and all its messages will be deleted for everyone. This cannot be undone.`,
    ok: 'Delete',
    busy: 'Deleting…',
    action: async () => {
      await api('DELETE', `/api/threads/${enc(id)}/`);
      dropThread(id);
      toast('Conversation deleted.');
    },
  });
});

// ---------------------------------------------------------------------------------------------
// New conversation: find people in the user directory (GET /api/users/?search=<prefix>), pick
// one or several, and POST /api/threads/: a new thread (201), or the one that already has
// exactly these people (200). Either way it opens.

const chosen = new Map(); // user id -> username
let searchSeq = 0;
let searchTimer = null;

function openNewConversation() {
  chosen.clear();
  renderChosen();
  $('people-search').value = '';
  $('new-error').textContent = '';
  $('new-dialog').showModal();
  $('people-search').focus();
  searchPeople();
}

$('new-conversation').addEventListener('click', openNewConversation);
$('new-conversation-empty').addEventListener('click', openNewConversation);
$('new-cancel').addEventListener('click', () => $('new-dialog').close());

$('people-search').addEventListener('input', () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(searchPeople, 150);
});

$('people-search').addEventListener('keydown', (e) => {
  if (e.key === 'Enter') {
    e.preventDefault();
    const first = $('people-results').querySelector('button');
    if ($('people-search').value.trim() && first) first.click();
    else if (chosen.size) $('new-form').requestSubmit();
  } else if (e.key === 'ArrowDown') {
    const first = $('people-results').querySelector('button');
    if (first) { e.preventDefault(); first.focus(); }
  } else if (e.key === 'Backspace' && !$('people-search').value && chosen.size) {
    chosen.delete([...chosen.keys()].pop());
    renderChosen();
    searchPeople();
  }
});

$('people-results').addEventListener('keydown', (e) => {
  const buttons = [...$('people-results').querySelectorAll('button')];
  const at = buttons.indexOf(document.activeElement);
  if (e.key === 'ArrowDown' && at < buttons.length - 1) { e.preventDefault(); buttons[at + 1].focus(); }
  if (e.key === 'ArrowUp') { e.preventDefault(); (at > 0 ? buttons[at - 1] : $('people-search')).focus(); }
});

async function searchPeople() {
  const q = $('people-search').value.trim();
  const mine = ++searchSeq;
  $('people-status').textContent = 'Searching…';
  try {
    const page = await api('GET', `/api/users/?search=${enc(q)}&limit=20`);
    if (mine !== searchSeq) return; // a newer search is under way
    for (const u of page.results) state.names.set(u.id, u.username);
    const people = page.results.filter((u) => u.id !== state.me.id && !chosen.has(u.id));
    $('people-results').replaceChildren(...people.map((u) => el('li', { class: 'person', 'data-user-id': u.id },
      el('button', { type: 'button', 'aria-label': `Add ${u.username}`, onclick: () => choose(u) },
        avatar(u.id), el('span', { class: 'name', text: u.username })))));
    $('people-status').textContent = people.length ? '' : q ? `Nobody's username starts with “${q}”.` : 'Nobody else here yet.';
    $('new-error').textContent = '';
  } catch (err) {
    if (mine !== searchSeq) return;
    $('people-status').textContent = '';
    $('new-error').textContent = `Couldn't search: ${reason(err)}`;
  }
}

function choose(u) {
  chosen.set(u.id, u.username);
  $('people-search').value = '';
  renderChosen();
  searchPeople();
  $('people-search').focus();
}

function renderChosen() {
  $('chosen').replaceChildren(...[...chosen].map(([id, name]) => el('span', { class: 'chip', 'data-user-id': id },
    avatar(id, 'tiny'), el('span', { text: name }),
    el('button', { type: 'button', class: 'unchoose', 'aria-label': `Remove ${name}`, text: '×', onclick: () => { chosen.delete(id); renderChosen(); searchPeople(); $('people-search').focus(); } }))));
  const start = $('start-conversation');
  start.disabled = chosen.size === 0;
  start.textContent = chosen.size === 0 ? 'Start conversation'
    : chosen.size === 1 ? `Chat with ${[...chosen.values()][0]}` : `Start group of ${chosen.size + 1}`;
}

$('new-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  if (!chosen.size) return;
  const start = $('start-conversation');
  start.disabled = true;
  $('new-error').textContent = '';
  try {
    const t = await api('POST', '/api/threads/', { participants: [...chosen.keys()] });
    state.threads.set(t.id, t);
    touchThread(t.id);
    renderThreads();
    $('new-dialog').close();
    await openThread(t.id);
  } catch (err) {
    $('new-error').textContent = `Couldn't start the conversation: ${reason(err)}`;
  } finally {
    start.disabled = chosen.size === 0;
  }
});

// ---------------------------------------------------------------------------------------------
// Reading a new message in the open thread: list the newest page again (one message is enough),
// which is how the API marks read; batched, so a burst of messages costs one request.
function markReadSoon(id) {
  if (document.visibilityState !== 'visible') return; // marked when the tab is shown again
  clearTimeout(state.readTimer);
  state.readTimer = setTimeout(() => {
    if (state.openId === id) api('GET', `/api/threads/${enc(id)}/messages/?limit=1`).then(() => refreshThread(id)).catch(() => {});
  }, 200);
}

document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && state.openId) markReadSoon(state.openId);
});

// ---------------------------------------------------------------------------------------------
// Typing indicator

function showTyping(thread, user) {
  if (thread !== state.openId || (state.me && user === state.me.id)) return;
  clearTimeout(state.typers.get(user));
  state.typers.set(user, setTimeout(() => { state.typers.delete(user); renderTyping(); }, TYPING_SHOW_MS));
  renderTyping();
}

function stopTyping(user) {
  clearTimeout(state.typers.get(user));
  if (state.typers.delete(user)) renderTyping();
}

function renderTyping() {
  const users = [...state.typers.keys()];
  const names = users.map(nameOf).sort();
  const typing = $('typing');
  typing.textContent = names.length === 0 ? '' : names.length === 1 ? `${names[0]} is typing…` : `${names.join(', ')} are typing…`;
  typing.dataset.users = users.join(' ');
  typing.hidden = names.length === 0;
}

// ---------------------------------------------------------------------------------------------
// Live events (docs/realtime.md), and what the person sees of the connection: "Live" while the
// socket is open; "Reconnecting" with the time of the next try once it dropped; "Offline" when
// the browser has no network or the server cannot be reached.

function setLive(s, detail) {
  state.live = s;
  const pill = $('live');
  pill.dataset.state = s;
  pill.textContent = { open: 'Live', connecting: 'Connecting…', reconnecting: 'Reconnecting…', offline: 'Offline' }[s] || s;
  pill.title = detail || pill.textContent;
  renderConnection();
}

function renderConnection() {
  const s = state.live;
  const bar = $('connection');
  const down = state.me && (s === 'reconnecting' || s === 'offline');
  bar.hidden = !down;
  bar.dataset.state = down ? s : '';
  clearInterval(state.countdownTimer);
  if (!down) return;
  const text = () => {
    if (state.pausedReason) return state.pausedReason;
    const secs = Math.max(0, Math.ceil((state.reconnectAt - Date.now()) / 1000));
    const when = state.reconnectTimer && secs > 0 ? ` Trying again in ${secs} s.` : ' Trying again…';
    if (s === 'offline') {
      return navigator.onLine === false
        ? 'You are offline. Messages can’t be sent until the network is back.'
        : `Can’t reach the server.${when}`;
    }
    return `Connection lost: live updates are paused.${when}`;
  };
  $('connection-text').textContent = text();
  state.countdownTimer = setInterval(() => { $('connection-text').textContent = text(); }, 1000);
}

$('reconnect-now').addEventListener('click', () => { state.pausedReason = null; state.attempts = 0; connect(); });

window.addEventListener('offline', () => {
  if (state.me && state.live !== 'open') setLive('offline');
});
window.addEventListener('online', () => {
  if (state.me && state.live !== 'open' && !state.pausedReason) { state.attempts = 0; connect(); }
});

// A new ticket for every connection: a ticket works for one handshake within 30 s.
async function connect() {
  clearTimeout(state.reconnectTimer);
  state.reconnectTimer = null;
  if (!state.access) return;
  if (state.socket) return; // already connected or connecting
  const first = state.live === 'offline' && state.attempts === 0 && !state.everOpen;
  setLive(first ? 'connecting' : state.live === 'offline' ? 'offline' : 'reconnecting');
  let ticket;
  try {
    ticket = await api('POST', '/api/realtime/ticket/');
  } catch (err) {
    if (!state.access) return;
    // No answer at all: the network or the server is down, not just the socket.
    setLive(err instanceof ApiError ? 'reconnecting' : 'offline');
    scheduleReconnect();
    return;
  }
  if (!state.access || state.socket) return;
  // `url` already carries `?ticket=`; add it only for a server that does not.
  const url = /[?&]ticket=/.test(ticket.url) ? ticket.url : `${ticket.url}${ticket.url.includes('?') ? '&' : '?'}ticket=${enc(ticket.ticket)}`;
  const ws = new WebSocket(url);
  state.socket = ws;
  ws.onopen = () => {
    if (state.socket !== ws) return;
    state.attempts = 0;
    state.everOpen = true;
    setLive('open');
    clearInterval(state.pingTimer);
    state.pingTimer = setInterval(() => {
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ action: 'ping' }));
    }, PING_MS);
    catchUp().catch(() => {});
  };
  ws.onmessage = (e) => {
    let ev;
    try { ev = JSON.parse(e.data); } catch (err) { return; }
    handleEvent(ev).catch((err) => console.warn('event', ev && ev.type, err));
  };
  // `error` is always followed by `close`; a refused handshake (401) looks the same.
  ws.onclose = () => {
    if (state.socket !== ws) return;
    clearInterval(state.pingTimer);
    state.socket = null;
    setLive(navigator.onLine === false ? 'offline' : 'reconnecting');
    scheduleReconnect();
  };
}

// 1 s, 2 s, 4 s ... up to 30 s, each with jitter, so that clients do not all come back at once.
function scheduleReconnect() {
  if (!state.access) return;
  const ceiling = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** state.attempts);
  state.attempts++;
  clearTimeout(state.reconnectTimer);
  const wait = ceiling / 2 + Math.random() * (ceiling / 2);
  state.reconnectAt = Date.now() + wait;
  state.reconnectTimer = setTimeout(connect, wait);
  renderConnection();
}

function closeSocket() {
  clearTimeout(state.reconnectTimer);
  state.reconnectTimer = null;
  clearInterval(state.pingTimer);
  clearTimeout(state.catchUpTimer);
  const ws = state.socket;
  state.socket = null;
  state.attempts = 0;
  state.everOpen = false;
  if (ws) ws.close();
  setLive('offline');
}

// Events may arrive twice with the same id; remember the recent ones.
function firstTime(id) {
  if (!id) return true;
  if (state.seen.has(id)) return false;
  state.seen.add(id);
  state.seenOrder.push(id);
  if (state.seenOrder.length > 2000) state.seen.delete(state.seenOrder.shift());
  return true;
}

// Said to screen readers: every message of the open thread, and of the others a short note
// (none for a muted one, which is meant to be quiet).
function announceMessage(m) {
  const t = state.threads.get(m.thread);
  const where = t && isGroup(t) ? ` in ${threadTitle(t)}` : '';
  const me = (m.mentions || []).includes(state.me.id);
  if (m.thread === state.openId) announce(`${nameOf(m.sender)}${me ? ' (mentions you)' : ''}: ${snippet(m.text, 200)}`);
  else if (!t || !isMuted(t)) announce(me ? `${nameOf(m.sender)} mentioned you${where}.` : `New message from ${nameOf(m.sender)}${where}.`);
}

async function handleEvent(ev) {
  if (!ev || typeof ev !== 'object') return;
  if (ev.type === 'pong') return;
  if (ev.type === 'error') { console.warn('realtime:', ev.detail); return; }
  if (!firstTime(ev.id)) return;
  const thread = ev.thread;
  const d = ev.data || {};
  switch (ev.type) {
    case 'message.created':
    case 'message.updated': {
      // Too big for an event: the notice names the message, fetch it.
      const m = d.fetch ? await api('GET', `/api/threads/${enc(thread)}/messages/${enc(d.message_id)}/`) : d.message;
      if (!m) return;
      const created = ev.type === 'message.created';
      const mine = m.sender === state.me.id;
      if (created && mine) matchOutgoing(m);
      if (created && !mine) announceMessage(m);
      if (thread === state.openId) {
        const isNew = !state.messages.has(m.id);
        holdMessage(m);
        if (created) {
          stopTyping(m.sender);
          setRead(m.sender, m.id); // the sender has read what they sent
          if (!mine) markReadSoon(thread);
        }
        renderMessages({ scroll: created && mine ? 'bottom' : undefined, newFromOthers: created && isNew && !mine });
      }
      if (created) bumpThread(thread, m);
      refreshThread(thread);
      break;
    }
    case 'message.deleted':
      if (thread === state.openId) { forgetMessage(d.message); renderMessages(); }
      refreshThread(thread);
      break;
    case 'thread.read':
      if (thread === state.openId) { setRead(d.user, d.message); renderReceipts(); }
      if (d.user === state.me.id) refreshThread(thread); // read on another device
      break;
    case 'thread.created':
    case 'thread.updated':
      if (d.thread && d.thread.id) {
        const t = mergeThread(d.thread);
        learnNames(t.participants);
        renderThreads();
        if (t.id === state.openId) { renderOpenTitle(); renderMessages(); }
      }
      break;
    case 'thread.deleted':
      touchThread(thread); // an answer asked for before this must not bring it back
      if (state.threads.has(thread) || state.openId === thread) {
        const t = state.threads.get(thread);
        const open = state.openId === thread;
        state.threads.delete(thread);
        for (const [k, o] of state.outbox) if (o.thread === thread) state.outbox.delete(k);
        renderThreads();
        if (open) threadGone(`${t ? conversationName(t) : 'This conversation'} was deleted, or you were removed from it.`);
      }
      break;
    case 'unread.changed':
      setTotals(d);
      break;
    case 'member.updated': {
      // My own view changed (here or on another device): mute and archive as it says.
      touchThread(thread);
      const t = state.threads.get(thread);
      if (!t) { refreshThread(thread); break; } // an archived thread not held: fetch it
      t.muted = !!d.muted;
      t.muted_until = d.muted_until || null;
      t.archived = !!d.archived;
      scheduleMuteEnd();
      renderThreads();
      if (thread === state.openId) renderOpenTitle();
      loadTotalsSoon();
      break;
    }
    case 'connection.closed':
      // The server closes this connection right after: say why, and do not reconnect blindly.
      if (d.reason === 'signed_out') {
        logOut('You were signed out: your account was changed. Log in again.');
      } else {
        // One of the oldest of too many open windows: this one makes way, and waits for the
        // person to ask for it back (reconnecting would push out another window in turn).
        closeSocket();
        state.pausedReason = 'Live updates stopped here: too many windows are open. Close some, then choose Try now.';
        setLive('offline');
      }
      break;
    case 'typing':
      showTyping(thread, d.user);
      break;
    default:
      break; // newer servers may add kinds; ignoring them is safe
  }
}

// ---------------------------------------------------------------------------------------------

PHONE.addEventListener('change', () => { if (!state.openId) showScreen('list'); });
fillIcons();

if (state.access) {
  start().catch((err) => {
    if (!state.access) return;
    $('login-error').textContent = `Cannot reach the server: ${reason(err)} Reload to try again.`;
  });
}
