// fleet.js: reading the fleet's state from the API, shared by the pages.
// Parts other than the clusters may fail on their own (a store query, an
// agent that lists backups); the page then shows what it has.

import * as api from './api.js';

// settle awaits the named promises; an expired session fails the whole
// refresh, any other failure leaves that part null with its error kept.
export async function settle(parts) {
  const names = Object.keys(parts);
  const results = await Promise.allSettled(Object.values(parts));
  const out = { errors: {} };
  results.forEach((r, i) => {
    if (r.status === 'fulfilled') { out[names[i]] = r.value; return; }
    if (r.reason instanceof api.Unauthorized) throw r.reason;
    out[names[i]] = null;
    out.errors[names[i]] = r.reason.message;
  });
  return out;
}

export const clusters = () => api.data('/api/v1/clusters');
export const firing = async () => (await api.data('/api/v1/alerts')).alerts;
// The newest jobs are enough for the pages (running ones are among them).
export const jobs = (cluster) => api.data('/api/v1/jobs', cluster ? { cluster, limit: '50' } : { limit: '100' });
export const remediation = () => api.data('/api/v1/remediation');

// budgets maps cluster → SLO error budget left in seconds (the smallest
// when a cluster has more than one SLO).
export async function budgets() {
  const out = {};
  for (const r of await api.query('nines_slo_error_budget_remaining_seconds')) {
    const c = r.metric.cluster, v = Number(r.value[1]);
    if (!(c in out) || v < out[c]) out[c] = v;
  }
  return out;
}

// Backups are listed by asking every agent, which can take seconds when
// one is slow: they are read at most every 15 s, in the background, and
// the pages show the last list meanwhile so they never wait for it.
let backupList = null, backupErr = null, backupAt = 0, backupRead = null;

// backupsNow returns the last list read (null before the first) and starts
// a new read when due; it never waits.
export function backupsNow() {
  if (!backupRead && (!backupList || Date.now() - backupAt > 15000)) {
    backupRead = api.data('/api/v1/backups')
      .then((d) => { backupList = d; backupErr = null; }, (e) => { backupErr = e; })
      .finally(() => { backupAt = Date.now(); backupRead = null; });
  }
  return backupList;
}

// backups is backupsNow that waits for the first list.
export async function backups() {
  if (!backupsNow()) await backupRead;
  if (!backupList) throw backupErr;
  return backupList;
}

// lastBackup is the newest complete backup of a cluster (the list is
// newest first).
export function lastBackup(list, cluster) {
  return (list || []).find((b) => b.cluster === cluster && b.state === 'complete') || null;
}

export const active = (j) => j.state === 'running' || j.state === 'pending';
