// api.js: the JSON API as the console uses it. Requests carry the session
// cookie (same origin); those that change something also carry the
// session's CSRF token, which the server checks.

let csrf = '';

export function setCSRF(token) { csrf = token; }

// Unauthorized means the session is gone (expired, logged out, or the
// appliance restarted: sessions live in its memory).
export class Unauthorized extends Error {}

export class APIError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function decode(resp, path) {
  if (resp.status === 401) throw new Unauthorized('not logged in');
  let body = null;
  const text = await resp.text();
  try { body = text ? JSON.parse(text) : null; } catch { body = null; }
  if (!resp.ok) {
    const msg = body && body.error ? body.error : `${resp.status} ${resp.statusText}`;
    throw new APIError(resp.status, `${path}: ${msg}`);
  }
  return body;
}

// get returns the decoded JSON of path with query params.
export async function get(path, params) {
  const q = params ? '?' + new URLSearchParams(params) : '';
  const resp = await fetch(path + q, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
  return decode(resp, path);
}

// data returns the "data" member of a nines or Prometheus answer.
export async function data(path, params) { return (await get(path, params)).data; }

// send makes a request that changes something.
export async function send(method, path, body) {
  const init = { method, credentials: 'same-origin', headers: { 'X-Nines-CSRF': csrf, Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  return decode(resp, path);
}

// query runs an instant PromQL query and returns its result vector.
export async function query(expr) {
  return (await data('/api/v1/query', { query: expr })).result;
}

// queryRange runs a range query over the last `seconds` with `step`
// seconds between points and returns its matrix.
export async function queryRange(expr, seconds, step) {
  const end = Date.now() / 1000;
  return (await data('/api/v1/query_range', { query: expr, start: (end - seconds).toFixed(3), end: end.toFixed(3), step: String(step) })).result;
}

// session returns the logged-in user, role and CSRF token.
export async function session() { return data('/console/session'); }

export async function login(user, password) {
  const resp = await fetch('/console/login', {
    method: 'POST', credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify({ user, password }),
  });
  if (resp.status === 401) {
    const body = await resp.json().catch(() => ({}));
    throw new APIError(401, body.error || 'wrong user name or password');
  }
  return (await decode(resp, '/console/login')).data;
}

export async function logout() { return send('POST', '/console/logout'); }
