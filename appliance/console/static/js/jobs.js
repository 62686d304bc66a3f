// jobs.js: the job log as a list whose entries open to their steps, the
// form an operator starts a job with, and the confirmed switchover.

import * as api from './api.js';
import { h, table, ago, duration, when, ask } from './dom.js';

// opened keeps which jobs the user expanded across refreshes.
const opened = new Set();

function span(a, b) {
  if (!a) return '–';
  const end = b ? Date.parse(b) : Date.now();
  return duration((end - Date.parse(a)) / 1000);
}

function json(raw) {
  if (raw === undefined || raw === null) return null;
  return h('pre', {}, JSON.stringify(raw, null, 2));
}

// jobList shows jobs newest first, each with its steps (input, output,
// error) when opened.
export function jobList(jobs, limit) {
  const list = [...jobs].sort((a, b) => Date.parse(b.created_at) - Date.parse(a.created_at)).slice(0, limit || 20);
  if (!list.length) return h('p', { class: 'muted' }, 'no jobs yet');
  return h('div', { class: 'jobs' }, list.map((j) => {
    const d = h('details', { open: opened.has(j.id), dataset: { job: j.id, jobState: j.state } },
      h('summary', {}, h('span', { class: `state state-${j.state}` }, j.state), ` ${j.runbook}`,
        j.target ? ` on ${j.target}` : '', j.dry_run ? ' (dry run)' : '',
        h('span', { class: 'muted' }, ` — ${j.trigger.source}${j.trigger.alert ? ' ' + j.trigger.alert : ''}${j.trigger.user ? ' by ' + j.trigger.user : ''}, ${ago(j.created_at)}, took ${span(j.started_at, j.ended_at)}`)),
      j.reason ? h('p', {}, j.reason) : null,
      table(['step', 'kind', 'state', 'started', 'took', 'detail'], (j.steps || []).map((st) => h('tr', {},
        h('td', {}, st.name), h('td', {}, st.kind), h('td', {}, h('span', { class: `state state-${st.state === 'done' ? 'succeeded' : st.state}` }, st.state)),
        h('td', {}, when(st.started_at)), h('td', {}, span(st.started_at, st.ended_at)),
        h('td', {}, st.error ? h('div', { class: 'error' }, st.error) : null,
          st.input ? h('details', {}, h('summary', {}, 'input'), json(st.input)) : null,
          st.output ? h('details', {}, h('summary', {}, 'output'), json(st.output)) : null))), 'no steps yet'));
    d.addEventListener('toggle', () => { if (d.open) opened.add(j.id); else opened.delete(j.id); });
    return d;
  }));
}

// KINDS are the jobs the form offers, by cluster kind. A switchover
// takes the form's node as the new primary ('(any)': the most advanced
// replica).
const KINDS = {
  galera: ['backup', 'verify', 'rejoin', 'recover', 'galera-rolling-restart'],
  replication: ['backup', 'verify', 'switchover', 'replication-rolling-restart'],
  // NDB: the node is a data node id.
  ndb: ['ndb-restart', 'ndb-system-restart', 'ndb-rolling-restart'],
};

// follow opens job id's entry in the job list, so its steps show as they
// run.
export function follow(id) { if (id) opened.add(id); }

// switchover asks the user to confirm handing cluster's primary over to
// target (host:port as configured; '' lets nines pick the most advanced
// replica), then starts the job and follows it. primary is the current
// primary as the page last saw it, for the question only: the runbook
// reads the cluster again.
export async function switchover(ctx, cluster, primary, target, dryRun) {
  const to = target || 'the most advanced replica';
  const question = `${dryRun ? 'Plan (dry run)' : 'Start'} a switchover of ${cluster}: make ${to} the primary instead of ${primary || 'the current primary (none seen)'}? `
    + `${primary || 'The old primary'} is made read-only and replicates from ${to}; writes pause until ${to} has caught up and is opened.`;
  if (!(await ask(question, dryRun ? 'Plan switchover' : 'Make primary'))) return null;
  const req = { cluster, kind: 'switchover', dry_run: !!dryRun };
  if (target) req.node = target;
  const r = await ctx.act(`switchover of ${cluster} to ${to}`, () => api.send('POST', '/api/v1/jobs', req));
  if (r && r.data) follow(r.data.id);
  return r;
}

// ROLLING says what a rolling restart does, by job kind, for the
// question asked before it starts.
const ROLLING = {
  'galera-rolling-restart': 'Each node is stopped, started and waited for until Synced by IST before the next; '
    + 'the HAProxy writer\'s node goes last. Writes pause for about a second when the writer moves.',
  'replication-rolling-restart': 'The replicas first, one at a time, each replicating again before the next; '
    + 'then a switchover to the most advanced replica (writes pause for about a second); then the old primary, as a replica.',
};

// rollingRestart asks the user to confirm restarting every node of
// cluster, then starts the job and follows it.
async function rollingRestart(ctx, cluster, kind) {
  const question = `Restart every node of ${cluster}, one at a time? ${ROLLING[kind]}`;
  if (!(await ask(question, 'Rolling restart'))) return;
  const r = await ctx.act(`rolling restart of ${cluster}`, () => api.send('POST', '/api/v1/jobs', { cluster, kind }));
  if (r && r.data) follow(r.data.id);
}

// startForm lets an operator start a job on cluster: a backup, a verify
// of a backup, and by cluster kind a rejoin of a node and a quorum
// recovery (Galera) or a switchover (replication, confirmed first;
// primary() names the current primary), or for NDB a restart of a data
// node (nodes are then data node ids) or a rolling restart (NDB and
// Galera, confirmed first: it restarts every node); dry run
// shows the plan only. It
// is built once so what the user types survives refreshes.
export function startForm(ctx, cluster, nodes, clusterKind, primary) {
  const kind = h('select', { name: 'kind' }, (KINDS[clusterKind] || KINDS.galera).map((k) => h('option', { value: k }, k)));
  const node = h('select', { name: 'node' }, h('option', { value: '' }, '(any)'), nodes.map((n) => h('option', { value: n }, n)));
  const backupID = h('input', { name: 'backup_id', placeholder: 'backup id (verify)', size: 22 });
  const dry = h('input', { type: 'checkbox', name: 'dry_run' });
  const form = h('form', { class: 'inline', id: 'start-job' },
    h('label', {}, 'job', kind), h('label', {}, 'node', node), h('label', {}, 'backup', backupID),
    h('label', {}, h('span', {}, 'dry run'), dry),
    h('button', { type: 'submit' }, 'Start job'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (kind.value === 'switchover') {
      switchover(ctx, cluster, primary ? primary() : '', node.value, dry.checked);
      return;
    }
    if (ROLLING[kind.value] && !dry.checked) {
      rollingRestart(ctx, cluster, kind.value);
      return;
    }
    const req = { cluster, kind: kind.value, dry_run: dry.checked };
    if (node.value) req.node = node.value;
    if (backupID.value) req.backup_id = backupID.value;
    ctx.act(`start ${kind.value} on ${cluster}`, () => api.send('POST', '/api/v1/jobs', req));
  });
  return form;
}
