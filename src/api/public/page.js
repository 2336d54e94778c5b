// What every page of the live view shares: the REST client, the Socket.IO connection, the API
// token of this tab, and a "visit" per page shown, whose socket handlers and subscriptions end
// when the page is left.
import { el, errorText } from './forms.js';

export { REPAIRABLE, RESUMABLE, STATUSES, TERMINAL } from './statuses.js';

export const view = document.getElementById('view');

// ---- the API token: sent as `Authorization: Bearer` and in the Socket.IO handshake ----
const TOKEN_KEY = 'orchestrator.apiToken';
/** The token this tab signed in with, or null. sessionStorage: it goes when the tab closes. */
export const storedToken = () => window.sessionStorage.getItem(TOKEN_KEY);
/** Keeps `token` for this tab, or forgets it (null). */
export function storeToken(token) {
  if (token) window.sessionStorage.setItem(TOKEN_KEY, token);
  else window.sessionStorage.removeItem(TOKEN_KEY);
}
let refused = () => {};
/**
 * `fn(token)` runs when the API answers 401 or the live connection is refused `unauthorized`,
 * with the token that was sent (null: none); not for a token since replaced by a sign-in.
 */
export function onRefused(fn) {
  refused = fn;
}

/** The token the last handshake sent: a refusal of an older one is stale. */
let handshakeToken = null;
export const socket = io({
  transports: ['websocket', 'polling'],
  // A function: each handshake, reconnects too, sends the token stored at that moment.
  auth: (send) => {
    handshakeToken = storedToken();
    send(handshakeToken ? { token: handshakeToken } : {});
  },
});
// Refused by the server's middleware: Socket.IO does not try again by itself (see reconnect).
socket.on('connect_error', (err) => {
  if (err.message === 'unauthorized' && handshakeToken === storedToken()) refused(handshakeToken);
});
// Closed by the server (its token expired): connects again, with the token stored now; a refused
// handshake then shows the sign-in panel.
socket.on('disconnect', (reason) => {
  if (reason === 'io server disconnect') socket.connect();
});
/** Connects the live connection again, with the token stored now. */
export function reconnect() {
  socket.disconnect().connect();
}

/**
 * Calls the REST API with the stored token, or with `options.token` (a sign-in trying one: its
 * 401 is the caller's to show). Throws an Error with the API's status, code and details.
 */
export async function api(method, path, body, options = {}) {
  const token = options.token ?? storedToken();
  // Every write says JSON, with a body or without: without authentication the API takes no
  // other (a page of another site cannot send it without asking first).
  const headers = method === 'GET' ? {} : { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  const data = text ? JSON.parse(text) : undefined;
  if (!res.ok) {
    if (res.status === 401 && options.token === undefined && token === storedToken()) {
      refused(token);
    }
    // code and details let a form place validation errors at their fields and follow pages.
    throw Object.assign(new Error(errorText(data, res.status)), {
      status: res.status,
      code: data?.error?.code,
      /** The API's message alone (`message` adds the issues). */
      apiMessage: data?.error?.message,
      details: data?.error?.details,
    });
  }
  return data;
}

export const time = (iso) => (iso ? new Date(iso).toLocaleTimeString() : '');
/** Date and time: for a time that may be on another day than today. */
export const fullTime = (iso) =>
  iso ? new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' }) : '';
/** A <time> with the full date and time, the ISO time in `datetime`. */
export const timeEl = (iso) => el('time', { datetime: iso ?? '', text: fullTime(iso) });
/** Says `text` to screen readers (the page's one polite live region, #announcer). */
export function announce(text) {
  const region = document.getElementById('announcer');
  if (region) region.textContent = text;
}
/** How far `iso` is from now, for countdowns: "in 4 s", "in 3 min", "in 5 h", "in 2 d" or "now". */
export function untilText(iso) {
  const s = Math.round((new Date(iso).getTime() - Date.now()) / 1000);
  if (s <= 0) return 'now';
  if (s < 120) return `in ${s} s`;
  if (s < 7200) return `in ${Math.round(s / 60)} min`;
  if (s < 172_800) return `in ${Math.round(s / 3600)} h`;
  return `in ${Math.round(s / 86_400)} d`;
}
/** An API error as one shows it in place: "code: message" (and the issues, one a line). */
export const errorLine = (err) => (err.code ? `${err.code}: ${err.message}` : err.message);
export const statusPill = (status) =>
  el('span', { class: `status status-${status}`, text: status });

/** Calls `fn` once, `ms` after the last call. */
export function debounce(fn, ms) {
  let timer;
  return () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(fn, ms);
  };
}

/**
 * One visit of a page. Work it started (fetches, events, acks) must not touch the page shown
 * after it: everything it registers goes through `guard`, and `leave()` undoes it all.
 */
export function createVisit() {
  let active = true;
  const undo = [];
  const guard =
    (fn) =>
    (...args) =>
      active ? fn(...args) : undefined;
  const visit = {
    alive: () => active,
    guard,
    /** Shows `err` in place of the page. */
    showError: guard((err) => view.replaceChildren(el('p', { class: 'error', text: err.message }))),
    /** Socket handlers for this visit. */
    on(raw) {
      const handlers = Object.entries(raw).map(([event, fn]) => [event, guard(fn)]);
      for (const [event, fn] of handlers) socket.on(event, fn);
      undo.push(() => {
        for (const [event, fn] of handlers) socket.off(event, fn);
      });
    },
    /**
     * Subscribes now and after every reconnect, calling `refetch` once the subscription is
     * acknowledged: only then can no event fall between the fetch and the subscription.
     */
    subscribe(sub, refetch) {
      const later = guard(refetch);
      const send = () => socket.emit('subscribe', sub, () => later());
      if (socket.connected) send();
      else later(); // shows what there is now; the ack refetches once connected
      visit.on({ connect: send });
      undo.push(() => socket.emit('unsubscribe', sub, () => {}));
    },
    /** Calls `fn` every `ms` while the visit lasts (countdowns). */
    every(ms, fn) {
      const timer = window.setInterval(guard(fn), ms);
      undo.push(() => window.clearInterval(timer));
    },
    leave() {
      active = false;
      for (const u of undo.splice(0)) u();
    },
  };
  return visit;
}
