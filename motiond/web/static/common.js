// Shared by every page: API calls, the header (session, log out), formatting, the login form.
// URLs are always relative to document.baseURI (the server sets <base href>), never "/...".

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function url(path) {
  return new URL(path, document.baseURI);
}

// "demo/2026-11-21/120000Z.mp4" -> the same with each segment percent-encoded.
export function encodePath(id) {
  return id.split('/').map(encodeURIComponent).join('/');
}

// The current page as a path under the base path ("/clips?camera=door#id", "/" for the live
// page): what the server takes as login?next= (it prefixes the base path itself).
export function currentPage() {
  const base = url('./').pathname;
  const path = location.pathname.startsWith(base)
    ? location.pathname.slice(base.length)
    : location.pathname.replace(/^\/+/, '');
  return '/' + path + location.search + location.hash;
}

// A path under the base path ("/clips") -> its URL.
export function pageUrl(path) {
  return url('.' + (path.startsWith('/') ? path : '/' + path));
}

export function goToLogin() {
  location.assign(url('login?next=' + encodeURIComponent(currentPage())));
}

// fetch() for the JSON API. A 401 sends the browser to the login page; other errors throw
// ApiError with the server's message. Returns the parsed JSON (null for 204).
export async function api(path, { method = 'GET', body } = {}) {
  // X-Motiond on every call, so the server can tell the pages' requests from a browser's own.
  const headers = { Accept: 'application/json', 'X-Motiond': '1' };
  const options = { method, credentials: 'same-origin', headers };
  if (method !== 'GET') {
    headers['Content-Type'] = 'application/json';
    if (body !== undefined) options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url(path), options);
  } catch (error) {
    throw new ApiError(0, 'cannot reach motiond (' + error.message + ')');
  }
  if (response.status === 401) {
    goToLogin();
    throw new ApiError(401, 'not logged in');
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const message = data && data.error ? data.error : response.status + ' ' + response.statusText;
    throw new ApiError(response.status, message);
  }
  return data;
}

// The picture that best shows what moved in a clip: its peak snapshot, else its poster.
export function clipThumbUrl(clip) {
  const peak = (clip.snapshot_urls || []).find((u) => u.endsWith('-peak.jpg'));
  return peak || clip.poster_url || null;
}

// el('a', {href: 'x', class: 'y'}, 'text', child) -> an element. Attributes with value
// null/undefined/false are left out; `true` sets an empty attribute.
export function el(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    element.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

// -- formatting (the browser's locale and time zone) -----------------------------------------

const timeFormat = new Intl.DateTimeFormat(undefined, {
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
});
const dayFormat = new Intl.DateTimeFormat(undefined, {
  weekday: 'long',
  day: 'numeric',
  month: 'long',
  year: 'numeric',
});
const dateTimeFormat = new Intl.DateTimeFormat(undefined, {
  dateStyle: 'medium',
  timeStyle: 'medium',
});

// Epoch seconds, an ISO string or a Date -> a Date (null when unreadable).
export function toDate(value) {
  if (value === null || value === undefined) return null;
  const date = typeof value === 'number' ? new Date(value * 1000) : new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

export function formatTime(value) {
  const date = toDate(value);
  return date ? timeFormat.format(date) : '';
}

export function formatDay(value) {
  const date = toDate(value);
  return date ? dayFormat.format(date) : '';
}

export function formatDateTime(value) {
  const date = toDate(value);
  return date ? dateTimeFormat.format(date) : '';
}

// "YYYY-MM-DD" of the local day (for grouping and <input type=date>).
export function localDayKey(value) {
  const date = toDate(value);
  if (!date) return '';
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

export function formatDuration(seconds) {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds)) return '';
  if (seconds < 60) return seconds.toFixed(1) + ' s';
  const total = Math.round(seconds);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

export function formatBytes(bytes) {
  if (typeof bytes !== 'number') return '';
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return (unit ? value.toFixed(value < 10 ? 1 : 0) : value) + ' ' + units[unit];
}

// A delta (fraction of the picture) as a percentage with useful precision.
export function formatPercent(fraction) {
  if (typeof fraction !== 'number' || !Number.isFinite(fraction)) return '–';
  const percent = fraction * 100;
  const digits = percent >= 10 ? 0 : percent >= 1 ? 1 : 2;
  return percent.toFixed(digits) + ' %';
}

// -- page furniture ---------------------------------------------------------------------------

// A message in the page's notice line (role=status); empty text hides it.
export function notify(text, kind = 'info') {
  const notice = document.getElementById('notice');
  if (!notice) return;
  notice.textContent = text || '';
  notice.dataset.kind = kind;
  notice.hidden = !text;
}

// Shows the user and a "Log out" button when auth is on.
export async function initHeader() {
  const box = document.getElementById('session');
  if (!box) return;
  let session;
  try {
    session = await api('api/session');
  } catch {
    return;
  }
  if (!session || !session.auth || !session.user) return;
  document.getElementById('session-user').textContent = session.user;
  box.hidden = false;
  document.getElementById('logout').addEventListener('click', async () => {
    try {
      await api('logout', { method: 'POST' });
    } catch (error) {
      if (error.status === 401) return;
    }
    location.assign(url('login'));
  });
}

// -- the login page ---------------------------------------------------------------------------

// Where to go after logging in: ?next= when it is a path under the base path, else the live page.
function loginTarget() {
  const next = new URLSearchParams(location.search).get('next') || '/';
  return next.startsWith('/') && !next.startsWith('//') ? next : '/';
}

function showLoginError(text) {
  document.getElementById('login-error').textContent = text;
}

function loginErrorText(status, retryAfter) {
  if (status === 401) return 'Wrong username or password.';
  if (status === 429) {
    const wait = Number(retryAfter);
    const when = wait > 0 ? `in ${Math.ceil(wait / 60)} min` : 'in a few minutes';
    return `Too many failed attempts. Try again ${when}.`;
  }
  return `Login failed (${status}).`;
}

// The form posts as a plain form without JS; with JS it posts the same fields through fetch so
// the error shows in place. The server answers 302 (followed here) on success, 401 or 429.
export function initLogin() {
  const form = document.getElementById('login-form');
  const target = loginTarget();
  form.elements.next.value = target;

  // The server puts its message in the page when it answers a plain form post with it.
  const error = document.getElementById('login-error');
  if (error.textContent.includes('{{')) error.textContent = '';

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    showLoginError('');
    try {
      const response = await fetch(url('login'), {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'X-Motiond': '1' },
        body: new URLSearchParams(new FormData(form)),
      });
      // Success is a 302 to next, followed here; response.url has no fragment, so go to next.
      const landed = new URL(response.url);
      if (response.ok && !landed.pathname.endsWith('/login')) {
        location.assign(pageUrl(target));
        return;
      }
      if (response.ok) {
        showLoginError('Logged in, but the session did not stick: are cookies blocked?');
      } else {
        showLoginError(loginErrorText(response.status, response.headers.get('Retry-After')));
      }
    } catch (error) {
      showLoginError('Cannot reach motiond: ' + error.message);
    } finally {
      button.disabled = false;
    }
    form.elements.password.select();
  });
}

if (document.getElementById('login-form')) initLogin();
