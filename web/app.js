// The reference web client. Plain JavaScript against the public API only, so frontend teams can
// read it as a recipe: log in, list threads, read and write messages, and stay live over the
// WebSocket API (docs/realtime.md). Nothing from the API is ever put in innerHTML: every string
// goes in through textContent or an attribute, so a message cannot inject markup.
//
// Stable hooks for tests (tests/browser/web_client.rs uses them; keep them when restyling):
//   #live[data-state=connecting|open|offline]      #total-unread[data-unread][data-threads]
//   #threads li.thread[data-thread-id][data-unread] > button.open > .title, .preview, .badge
//   #messages li.message[data-message-id][data-sender] > .text, .edited, .receipt[data-users],
//     button.edit, button.delete; while editing: .edit-form > input.edit-text, button.save
//   #typing.typing[data-users]    #composer > input#text    #login-form > #username, #password
'use strict';

// config.js (written per deployment) names the API; without it, the page's own origin.
const API_BASE = String((window.MESSAGING_CONFIG || {}).apiBase || '').replace(/\/+$/, '');
const PAGE_SIZE = 30; // messages per page when opening a thread
const TYPING_SEND_MS = 1500; // send at most one typing action this often (the server relays ≤ 1 per 300 ms)
const TYPING_SHOW_MS = 4000; // how long "x is typing…" stays after the last typing event
const PING_MS = 4 * 60 * 1000; // API Gateway closes connections idle for 10 minutes
const MAX_BACKOFF_MS = 30000;

const $ = (id) => document.getElementById(id);

const state = {
  // Tokens live in sessionStorage: they survive a reload of this tab but not the tab itself, and
  // are never in a cookie, so no other site can make the browser send them.
  access: sessionStorage.getItem('access'),
  refresh: sessionStorage.getItem('refresh'),
  me: null, // {id, username}
  names: new Map(), // user id -> username
  threads: new Map(), // thread id -> thread as the API gives it
  moreThreads: null, // the thread list's `next` link
  pagedThreads: false, // whether "More threads" was used (then catch-up keeps that link)
  openId: null, // the open thread
  messages: new Map(), // message id -> message, of the open thread
  olderUrl: null, // the open thread's `next` link (older messages)
  pagedOlder: false, // whether "Older messages" was used
  since: null, // the open thread's version as of what we hold, for `?since=`
  reads: new Map(), // user id -> id of the newest message of the open thread they have read
  typers: new Map(), // user id -> timer hiding their "is typing"
  editing: null, // id of the message whose edit form is open
  seen: new Set(), // event ids already handled (events may be redelivered with the same id)
  seenOrder: [],
  socket: null,
  attempts: 0, // reconnect attempts since the last open socket
  reconnectTimer: null,
  pingTimer: null,
  lastTypingSent: 0,
  refreshing: null, // the token refresh in flight, shared by every request that got a 401
  threadRefresh: new Map(), // thread id -> pending refresh timer
  readTimer: null,
};

// ---------------------------------------------------------------------------------------------
// HTTP

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.detail) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
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

const enc = encodeURIComponent;

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
  for (const c of children) if (c) node.append(c);
  return node;
}

function notice(text) {
  $('notice').textContent = text || '';
  $('notice').hidden = !text;
}

function nameOf(id) {
  if (state.me && id === state.me.id) return 'you';
  return state.names.get(id) || `user ${id}`;
}

// A message id is "<thread id>.<n>", n counting the thread's messages from 1.
const seq = (messageId) => Number(String(messageId).slice(String(messageId).lastIndexOf('.') + 1));

// ---------------------------------------------------------------------------------------------
// Logging in and out

$('login-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  $('login-error').textContent = '';
  const button = e.target.querySelector('button');
  button.disabled = true;
  try {
    const res = await request('POST', '/api/token/', { username: $('username').value, password: $('password').value });
    const body = await res.json().catch(() => null);
    if (!res.ok) {
      // 401 for wrong credentials, 429 after too many failures (with Retry-After).
      $('login-error').textContent = (body && body.detail) || `Login failed (HTTP ${res.status}).`;
      return;
    }
    saveTokens(body);
    $('password').value = '';
    await start();
  } catch (err) {
    $('login-error').textContent = 'Cannot reach the server.';
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
  closeThread();
  $('app-view').hidden = true;
  $('logout').hidden = true;
  $('total').hidden = true;
  $('me').textContent = '';
  $('login-view').hidden = false;
  notice(message);
}

async function start() {
  state.me = await api('GET', '/api/users/me/');
  $('login-view').hidden = true;
  $('app-view').hidden = false;
  $('logout').hidden = false;
  $('total').hidden = false;
  $('me').textContent = state.me.username;
  notice('');
  await loadNames();
  // Show the threads at once, and fetch again whenever the socket opens (connect), so that
  // nothing falls between the fetched state and the first event.
  connect();
  await catchUp();
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
    loadNames().then(() => { renderThreads(); renderOpenTitle(); }).catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------
// Catching up after every (re)connect: the thread list and totals again, and for the open
// thread exactly what was sent, edited or deleted since the version we hold (`?since=`).

async function catchUp() {
  await Promise.all([loadThreads(), loadTotals()]);
  if (state.openId) await (state.since ? loadChanges(state.openId) : loadNewestPage(state.openId));
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
      if (m.deleted) { removeMessage(m.id); continue; }
      if (state.messages.has(m.id) || !state.messages.size || seq(m.id) > lowest) {
        added = added || !state.messages.has(m.id);
        const { deleted, ...message } = m;
        putMessage(message);
      }
    }
    state.since = changes.since;
    url = changes.next;
  }
  renderReceipts();
  refreshThread(id); // catching up marks read, as the list does
  if (added) scrollToEnd();
}

async function loadTotals() {
  setTotals(await api('GET', '/api/unread_count/'));
}

function setTotals(t) {
  const total = $('total-unread');
  total.textContent = String(t.unread_count);
  total.dataset.unread = String(t.unread_count);
  total.dataset.threads = String(t.threads);
}

// The first page of threads, merged into what we hold: threads newer than the page's oldest
// that are missing from it are gone (deleted, or we were removed).
async function loadThreads() {
  const page = await api('GET', '/api/threads/?limit=50');
  // Without a next page the list is complete, so anything else we hold is gone.
  const oldest = page.next && page.results.length ? page.results[page.results.length - 1].updated : '';
  for (const [id, t] of state.threads) {
    if (t.updated >= oldest && !page.results.some((r) => r.id === id)) state.threads.delete(id);
  }
  for (const t of page.results) state.threads.set(t.id, t);
  if (!state.pagedThreads) state.moreThreads = page.next;
  learnNames(page.results.flatMap((t) => t.participants));
  renderThreads();
  if (state.openId && !state.threads.has(state.openId)) threadGone();
}

$('more-threads').addEventListener('click', async () => {
  if (!state.moreThreads) return;
  const page = await api('GET', state.moreThreads);
  for (const t of page.results) state.threads.set(t.id, t);
  state.moreThreads = page.next;
  state.pagedThreads = true;
  renderThreads();
});

// One thread again (its unread count, last message and place in the list), a little later so
// that a burst of events costs one request.
function refreshThread(id) {
  clearTimeout(state.threadRefresh.get(id));
  state.threadRefresh.set(id, setTimeout(async () => {
    state.threadRefresh.delete(id);
    try {
      const t = await api('GET', `/api/threads/${enc(id)}/`);
      state.threads.set(t.id, t);
      learnNames(t.participants);
      renderThreads();
    } catch (err) {
      if (err.status === 404) dropThread(id);
    }
  }, 150));
}

function dropThread(id) {
  state.threads.delete(id);
  renderThreads();
  if (state.openId === id) threadGone();
}

function threadTitle(t) {
  const others = t.participants.filter((p) => !state.me || p !== state.me.id);
  return others.map(nameOf).join(', ') || 'only you';
}

// Ordered as the API orders them: most recent activity (`updated`) first.
function renderThreads() {
  const list = $('threads');
  const sorted = [...state.threads.values()].sort((a, b) => (a.updated < b.updated ? 1 : a.updated > b.updated ? -1 : 0));
  list.replaceChildren(...sorted.map((t) => {
    const unread = t.unread_count || 0;
    const preview = t.last_message ? `${nameOf(t.last_message.sender)}: ${t.last_message.text}` : 'No messages yet';
    return el('li', { class: 'thread' + (t.id === state.openId ? ' selected' : ''), 'data-thread-id': t.id, 'data-unread': unread },
      el('button', { class: 'open', type: 'button', 'aria-current': t.id === state.openId ? 'true' : null, onclick: () => openThread(t.id) },
        el('span', { class: 'title', text: threadTitle(t) }),
        el('span', { class: 'preview', text: preview }),
        el('span', { class: 'badge', text: String(unread), hidden: unread === 0, 'aria-label': `${unread} unread` })));
  }));
  $('more-threads').hidden = !state.moreThreads;
}

// ---------------------------------------------------------------------------------------------
// The open thread

async function openThread(id) {
  closeThread();
  state.openId = id;
  $('thread-view').hidden = false;
  $('no-thread').hidden = true;
  renderOpenTitle();
  renderThreads();
  await loadNewestPage(id);
  await loadReceipts(id);
  $('text').focus();
}

function closeThread() {
  state.openId = null;
  state.messages.clear();
  state.reads.clear();
  state.olderUrl = null;
  state.pagedOlder = false;
  state.since = null;
  state.editing = null;
  for (const timer of state.typers.values()) clearTimeout(timer);
  state.typers.clear();
  $('messages').replaceChildren();
  $('thread-view').hidden = true;
  $('no-thread').hidden = false;
  renderTyping();
}

function threadGone() {
  closeThread();
  notice('That thread is no longer available to you.');
}

function renderOpenTitle() {
  const t = state.threads.get(state.openId);
  $('thread-title').textContent = t ? threadTitle(t) : '';
}

// Listing the newest page is how the API marks a thread read ("reading the first page marks
// the whole thread read"), so opening a thread and catching up both mark it read.
async function loadNewestPage(id) {
  let page;
  try {
    page = await api('GET', `/api/threads/${enc(id)}/messages/?limit=${PAGE_SIZE}`);
  } catch (err) {
    if (err.status === 404) dropThread(id);
    throw err;
  }
  if (state.openId !== id) return;
  state.since = page.since;
  // Messages in the page's range that it no longer has were deleted while we were away.
  const lowest = page.results.length ? seq(page.results[page.results.length - 1].id) : 0;
  for (const m of [...state.messages.values()]) {
    if (seq(m.id) >= lowest && !page.results.some((r) => r.id === m.id)) removeMessage(m.id);
  }
  for (const m of page.results) putMessage(m);
  if (!state.pagedOlder) state.olderUrl = page.next;
  $('older').hidden = !state.olderUrl;
  renderReceipts();
  refreshThread(id); // its unread count is 0 now
  scrollToEnd();
}

$('older').addEventListener('click', async () => {
  const id = state.openId;
  if (!state.olderUrl) return;
  const page = await api('GET', state.olderUrl); // older pages change no read state
  if (state.openId !== id) return;
  for (const m of page.results) putMessage(m);
  state.olderUrl = page.next;
  state.pagedOlder = true;
  $('older').hidden = !state.olderUrl;
  renderReceipts();
});

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

// Adds or replaces one message in the list, in thread order.
function putMessage(m) {
  state.messages.set(m.id, m);
  if (state.editing === m.id) return; // redrawn when the edit form closes
  const node = renderMessage(m);
  const list = $('messages');
  const old = list.querySelector(`[data-message-id="${CSS.escape(m.id)}"]`);
  if (old) { old.replaceWith(node); return; }
  const after = [...list.children].find((li) => seq(li.dataset.messageId) > seq(m.id));
  list.insertBefore(node, after || null);
}

function removeMessage(id) {
  state.messages.delete(id);
  if (state.editing === id) state.editing = null;
  const old = $('messages').querySelector(`[data-message-id="${CSS.escape(id)}"]`);
  if (old) old.remove();
}

function renderMessage(m) {
  const mine = state.me && m.sender === state.me.id;
  const when = new Date(m.created);
  return el('li', { class: 'message' + (mine ? ' mine' : ''), 'data-message-id': m.id, 'data-sender': m.sender },
    el('div', { class: 'meta' },
      el('span', { class: 'sender', text: nameOf(m.sender) }), ' · ',
      el('time', { datetime: m.created, title: when.toLocaleString(), text: when.toLocaleTimeString() }),
      m.edited ? el('span', { class: 'edited', title: `edited ${new Date(m.edited).toLocaleString()}`, text: ' (edited)' }) : null),
    el('div', { class: 'text', text: m.text }),
    mine ? el('div', { class: 'actions' },
      el('button', { class: 'edit', type: 'button', onclick: () => startEdit(m.id), text: 'Edit' }),
      el('button', { class: 'delete', type: 'button', onclick: () => deleteMessage(m.id), text: 'Delete' })) : null,
    el('p', { class: 'receipt', hidden: true }));
}

// "Seen by bob" under the newest message each other participant has read (not under their
// own messages: a sender has read what they sent). If that message is not on screen (deleted,
// or older than what is loaded), the newest shown message before it carries the receipt.
function renderReceipts() {
  const list = $('messages');
  const byMessage = new Map();
  const shown = [...list.children].map((li) => li.dataset.messageId);
  for (const [user, read] of state.reads) {
    if (state.me && user === state.me.id) continue;
    const at = shown.filter((id) => seq(id) <= seq(read)).pop();
    if (!at || state.messages.get(at).sender === user) continue;
    if (!byMessage.has(at)) byMessage.set(at, []);
    byMessage.get(at).push(user);
  }
  for (const li of list.children) {
    const receipt = li.querySelector(':scope > .receipt');
    if (!receipt) continue;
    const users = byMessage.get(li.dataset.messageId) || [];
    receipt.textContent = users.length ? `Seen by ${users.map(nameOf).sort().join(', ')}` : '';
    receipt.dataset.users = users.join(' ');
    receipt.hidden = users.length === 0;
  }
}

function scrollToEnd() {
  const last = $('messages').lastElementChild;
  if (last) last.scrollIntoView({ block: 'end' });
}

// Sending. A client_id makes a retried send (say, after a dropped connection) happen once.
$('composer').addEventListener('submit', async (e) => {
  e.preventDefault();
  const id = state.openId;
  const text = $('text').value;
  if (!id || !text.trim()) return;
  const body = { text };
  if (window.crypto && crypto.randomUUID) body.client_id = crypto.randomUUID();
  try {
    const m = await api('POST', `/api/threads/${enc(id)}/messages/`, body);
    $('text').value = '';
    if (state.openId === id) { putMessage(m); renderReceipts(); scrollToEnd(); }
    refreshThread(id);
  } catch (err) {
    notice(`Not sent: ${err.message}`);
  }
});

// Typing: tell the others while the user types, throttled (the server drops extras anyway).
$('text').addEventListener('input', () => {
  const now = Date.now();
  if (!state.openId || now - state.lastTypingSent < TYPING_SEND_MS) return;
  if (state.socket && state.socket.readyState === WebSocket.OPEN) {
    state.lastTypingSent = now;
    state.socket.send(JSON.stringify({ action: 'typing', thread: state.openId }));
  }
});

function startEdit(id) {
  const m = state.messages.get(id);
  const li = $('messages').querySelector(`[data-message-id="${CSS.escape(id)}"]`);
  if (!m || !li || state.editing) return;
  state.editing = id;
  const input = el('input', { class: 'edit-text', maxlength: 10000, 'aria-label': 'New text' });
  input.value = m.text;
  const form = el('form', { class: 'edit-form' }, input,
    el('button', { class: 'save', type: 'submit', text: 'Save' }),
    el('button', { class: 'cancel', type: 'button', text: 'Cancel', onclick: () => endEdit(id) }));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      const updated = await api('PATCH', `/api/threads/${enc(state.openId)}/messages/${enc(id)}/`, { text: input.value });
      state.messages.set(id, updated);
      endEdit(id);
      refreshThread(updated.thread);
    } catch (err) {
      notice(`Not saved: ${err.message}`);
    }
  });
  li.querySelector('.text').replaceWith(form);
  input.focus();
}

function endEdit(id) {
  state.editing = null;
  const m = state.messages.get(id);
  if (m) putMessage(m);
  renderReceipts();
}

async function deleteMessage(id) {
  const thread = state.openId;
  try {
    await api('DELETE', `/api/threads/${enc(thread)}/messages/${enc(id)}/`);
    removeMessage(id);
    renderReceipts();
    refreshThread(thread);
  } catch (err) {
    if (err.status === 404) { removeMessage(id); renderReceipts(); } else notice(`Not deleted: ${err.message}`);
  }
}

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
// Live events (docs/realtime.md)

function setLive(s) {
  $('live').dataset.state = s;
  $('live').textContent = s === 'open' ? 'live' : s;
}

// A new ticket for every connection: a ticket works for one handshake within 30 s.
async function connect() {
  clearTimeout(state.reconnectTimer);
  if (!state.access) return;
  setLive('connecting');
  let ticket;
  try {
    ticket = await api('POST', '/api/realtime/ticket/');
  } catch (err) {
    if (state.access) scheduleReconnect();
    return;
  }
  if (!state.access) return;
  // `url` already carries `?ticket=`; add it only for a server that does not.
  const url = /[?&]ticket=/.test(ticket.url) ? ticket.url : `${ticket.url}${ticket.url.includes('?') ? '&' : '?'}ticket=${enc(ticket.ticket)}`;
  const ws = new WebSocket(url);
  state.socket = ws;
  ws.onopen = () => {
    if (state.socket !== ws) return;
    state.attempts = 0;
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
    setLive('offline');
    scheduleReconnect();
  };
}

// 1 s, 2 s, 4 s ... up to 30 s, each with jitter, so that clients do not all come back at once.
function scheduleReconnect() {
  if (!state.access) return;
  const ceiling = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** state.attempts);
  state.attempts++;
  clearTimeout(state.reconnectTimer);
  state.reconnectTimer = setTimeout(connect, ceiling / 2 + Math.random() * (ceiling / 2));
}

function closeSocket() {
  clearTimeout(state.reconnectTimer);
  clearInterval(state.pingTimer);
  const ws = state.socket;
  state.socket = null;
  state.attempts = 0;
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
      if (thread === state.openId) {
        putMessage(m);
        if (ev.type === 'message.created') {
          stopTyping(m.sender);
          setRead(m.sender, m.id); // the sender has read what they sent
          if (m.sender !== state.me.id) markReadSoon(thread);
          scrollToEnd();
        }
        renderReceipts();
      }
      refreshThread(thread);
      break;
    }
    case 'message.deleted':
      if (thread === state.openId) { removeMessage(d.message); renderReceipts(); }
      refreshThread(thread);
      break;
    case 'thread.read':
      if (thread === state.openId) { setRead(d.user, d.message); renderReceipts(); }
      if (d.user === state.me.id) refreshThread(thread); // read on another device
      break;
    case 'thread.created':
    case 'thread.updated':
      if (d.thread) {
        state.threads.set(d.thread.id, d.thread);
        learnNames(d.thread.participants);
        renderThreads();
        if (d.thread.id === state.openId) renderOpenTitle();
      }
      break;
    case 'thread.deleted':
      dropThread(thread);
      break;
    case 'unread.changed':
      setTotals(d);
      break;
    case 'typing':
      showTyping(thread, d.user);
      break;
    default:
      break; // newer servers may add kinds; ignoring them is safe
  }
}

// ---------------------------------------------------------------------------------------------

if (state.access) {
  start().catch(() => { if (state.access) notice('Cannot reach the server.'); });
}
