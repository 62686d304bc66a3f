// app.js: the console's single page. It checks the session (showing the
// login form without one), routes by the URL's hash, and refreshes the
// current page from the JSON API every second, changing the DOM in place:
// the page is never reloaded.

import * as api from './api.js';
import { h, replace } from './dom.js';
import overview from './overview.js';
import cluster from './cluster.js';
import alerts from './alerts.js';
import backups from './backups.js';
import reports from './reports.js';
import queries from './queries.js';
import blocking from './blocking.js';
import advice from './advice.js';
import drills from './drills.js';

// ninesLoadedAt is set once per page load; the browser tests check it
// stays the same while the page follows the cluster live.
window.ninesLoadedAt = Date.now();
window.ninesRefreshes = 0;

const RANKS = { viewer: 1, operator: 2, admin: 3 };
const REFRESH_MS = 1000;

const view = document.getElementById('view');
// The login form leaves the document while a page is shown: keep its
// fields at hand.
const loginForm = document.getElementById('login');
const loginUser = document.getElementById('login-user');
const loginPassword = document.getElementById('login-password');
const loginError = document.getElementById('login-error');
const status = document.getElementById('status');

const ctx = {
  user: '', role: '',
  // can says whether the user's role allows what needs `role`; the
  // server checks again.
  can(role) { return (RANKS[this.role] || 0) >= RANKS[role]; },
  // act runs a change the user asked for and reports its outcome.
  async act(what, fn) {
    try {
      const r = await fn();
      showStatus(`${what}: done`, false);
      refreshNow();
      return r;
    } catch (e) {
      showStatus(`${what}: ${e.message}`, true);
      return null;
    }
  },
};

function showStatus(msg, bad) {
  status.textContent = msg;
  status.style.color = bad ? '' : 'var(--ok)';
}

const routes = [
  [/^#?\/?$/, overview],
  [/^#\/cluster\/([^/]+)$/, cluster],
  [/^#\/cluster\/([^/]+)\/queries(?:\?.*)?$/, queries],
  [/^#\/cluster\/([^/]+)\/blocking$/, blocking],
  [/^#\/cluster\/([^/]+)\/advice$/, advice],
  [/^#\/cluster\/([^/]+)\/drills$/, drills],
  [/^#\/alerts$/, alerts],
  [/^#\/backups$/, backups],
  [/^#\/reports$/, reports],
];

let current = null; // { refresh } of the page shown
let timer = null;
let refreshing = false;

function route() {
  const hash = location.hash || '#/';
  status.textContent = '';
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.getAttribute('href') === hash);
  for (const [re, page] of routes) {
    const m = hash.match(re);
    if (m) {
      const root = h('div', { class: 'page' });
      replace(view, root);
      current = page(root, ctx, ...m.slice(1).map(decodeURIComponent));
      refreshNow();
      return;
    }
  }
  replace(view, h('p', { class: 'card' }, 'No such page. ', h('a', { href: '#/' }, 'Overview')));
  current = null;
}

async function refresh() {
  if (!current || refreshing) return;
  refreshing = true;
  try {
    await current.refresh();
    window.ninesRefreshes++;
    if (status.dataset.stale) { status.textContent = ''; delete status.dataset.stale; }
  } catch (e) {
    if (e instanceof api.Unauthorized) { showLogin('Your session ended; log in again.'); return; }
    status.textContent = `Cannot refresh: ${e.message}`;
    status.style.color = '';
    status.dataset.stale = '1';
  } finally {
    refreshing = false;
  }
}

function refreshNow() {
  clearTimeout(timer);
  const loop = async () => {
    await refresh();
    if (current) timer = setTimeout(loop, REFRESH_MS);
  };
  loop();
}

function showLogin(msg) {
  current = null;
  ctx.user = ctx.role = '';
  clearTimeout(timer);
  document.getElementById('nav').hidden = true;
  document.getElementById('who').hidden = true;
  replace(view, loginForm);
  loginForm.hidden = false;
  loginPassword.value = '';
  loginError.textContent = msg || '';
  loginUser.focus();
}

function start(s) {
  ctx.user = s.user;
  ctx.role = s.role;
  api.setCSRF(s.csrf);
  document.getElementById('who-user').textContent = s.user;
  document.getElementById('who-role').textContent = s.role;
  document.getElementById('nav').hidden = false;
  document.getElementById('who').hidden = false;
  loginForm.hidden = true;
  status.textContent = '';
  route();
}

loginForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  try {
    const s = await api.login(loginUser.value, loginPassword.value);
    loginPassword.value = '';
    start(s);
  } catch (e) {
    loginError.textContent = e.message;
  }
});

document.getElementById('logout').addEventListener('click', async () => {
  try { await api.logout(); } catch { /* the session is gone either way */ }
  loginUser.value = '';
  showLogin('Logged out.');
});

window.addEventListener('hashchange', () => { if (ctx.user) route(); });

api.session().then(start, () => showLogin(''));
