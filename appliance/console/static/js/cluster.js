// cluster.js: one cluster: its topology (a replication cluster's with
// each node's role and, for an operator, a switchover to each healthy
// replica; an NDB cluster's node groups, ndb.js), recent state changes,
// charts of the main series, and its jobs with their step logs.

import * as api from './api.js';
import * as fleet from './fleet.js';
import { lineChart } from './chart.js';
import { jobList, startForm, switchover } from './jobs.js';
import { ndbTopology, dataNodeIDs } from './ndb.js';
import { h, replace, table, ago, when, duration, stateWord, clusterWord, stateCell, fact } from './dom.js';

const CHART_WINDOW = 15 * 60, CHART_STEP = 5; // seconds
const CHANGES_WINDOW = 3600, CHANGES_STEP = 2;

const STATE_NAMES = { 0: 'Initialized', 1: 'Joining', 2: 'Donor', 3: 'Joined', 4: 'Synced', 5: 'Error' };

// role is a replication node's part as its latest scrape shows it: a
// replica has a replica connection, the primary none and read_only OFF.
function role(n) {
  if (!n.up) return 'down';
  if ((n.replicas || []).length) return 'replica';
  return (n.read_only || '').toUpperCase() === 'OFF' ? 'primary' : 'read-only';
}

// healthyReplica: both replication threads run and nothing is reported
// wrong; only such a replica is offered as the new primary.
function healthyReplica(n) {
  const r = (n.replicas || [])[0];
  return role(n) === 'replica' && !!r && r.io_running && r.sql_running && !r.last_error && !n.error;
}

function primaryOf(nodes) {
  const p = nodes.find((n) => role(n) === 'primary');
  return p ? p.instance : '';
}

function source(r) { return r.source_port ? `${r.source}:${r.source_port}` : r.source; }

// replTopology is a replication cluster's nodes with their roles; an
// operator gets a "Make primary" button on each healthy replica.
function replTopology(ctx, name, nodes) {
  const primary = primaryOf(nodes);
  return table(['node', 'state', 'role', 'replicates from', 'threads (io/sql)', 'behind', 'read_only', 'gtid_binlog_pos', 'version', 'read', 'error', ''],
    nodes.map((n) => {
      const r = (n.replicas || [])[0], rl = role(n), w = stateWord(n);
      return h('tr', { dataset: { node: n.instance, state: w, role: rl } }, h('td', {}, n.instance), stateCell(w),
        h('td', { class: rl === 'primary' ? 'state state-ok' : null }, rl),
        h('td', {}, r ? source(r) : ''), h('td', {}, r ? `${r.io_running ? 'yes' : 'no'}/${r.sql_running ? 'yes' : 'no'}` : ''),
        h('td', {}, r && r.seconds_behind !== undefined ? duration(r.seconds_behind) : ''), h('td', {}, n.read_only || ''),
        h('td', {}, n.replication ? n.replication.gtid_binlog_pos : ''), h('td', {}, n.version || ''),
        h('td', { class: 'muted' }, n.scraped_at ? ago(n.scraped_at) : 'never'), h('td', { class: 'error' }, n.error || (r && r.last_error) || ''),
        h('td', {}, ctx.can('operator') && healthyReplica(n)
          ? h('button', { type: 'button', class: 'secondary', dataset: { switchoverTo: n.instance },
            onclick: () => switchover(ctx, name, primary, n.instance, false) }, 'Make primary')
          : null));
    }));
}

function galeraTopology(nodes) {
  return table(['node', 'state', 'component', 'size', 'conf_id', 'recv queue', 'flow control paused', 'last committed', 'version', 'read', 'error'],
    nodes.map((n) => {
      const g = n.galera || {}, w = stateWord(n);
      return h('tr', { dataset: { node: n.instance, state: w } }, h('td', {}, n.instance), stateCell(w),
        h('td', {}, g.cluster_status || ''), h('td', {}, g.cluster_size ?? ''), h('td', {}, g.cluster_conf_id ?? ''),
        h('td', {}, g.local_recv_queue ?? ''), h('td', {}, g.flow_control_paused !== undefined ? g.flow_control_paused.toFixed(3) : ''),
        h('td', {}, g.last_committed ?? ''), h('td', {}, n.version || ''),
        h('td', { class: 'muted' }, n.scraped_at ? ago(n.scraped_at) : 'never'), h('td', { class: 'error' }, n.error || ''));
    }));
}

// Charts and state changes come from the store, so they are read every
// few seconds; the topology every second.
function every(ms, fn) {
  let at = 0;
  return async () => { if (Date.now() - at >= ms) { at = Date.now(); await fn(); } };
}

// driftTable lists the global variables whose values differ across the
// nodes (the API's drift: what must agree and does not), one column per
// node; nothing when they agree.
function driftTable(drift, nodes) {
  if (!drift.length) return null;
  return [h('h3', {}, 'Config drift ', h('span', { class: 'muted' }, 'global variables that differ across the nodes')),
    table(['variable', ...nodes], drift.map((d) => h('tr', { dataset: { driftVariable: d.variable } },
      h('td', {}, h('code', {}, d.variable)), nodes.map((n) => h('td', { class: 'stmt' }, h('code', {}, d.values[n] ?? '–'))))))];
}

export default function cluster(root, ctx, name) {
  const sel = `{cluster=${JSON.stringify(name)}}`;
  // selWith is the cluster's selector with more matchers.
  const selWith = (m) => `{cluster=${JSON.stringify(name)},${m}}`;
  let kind = ''; // the cluster's kind, once read
  const head = h('h2', {}, name);
  const facts = h('div', { class: 'facts' });
  const topo = h('div', { id: 'topology' });
  const changes = h('div', { id: 'changes' });
  const charts = h('div', { class: 'charts', id: 'charts' });
  const jobs = h('div', { id: 'jobs' });
  const actions = h('div', { id: 'actions' });
  const drift = h('div', { id: 'drift' });
  let formBuilt = false;
  let latest = []; // the nodes as last read, for the switchover's question
  replace(root,
    h('section', { class: 'card' }, head, facts, topo, drift, actions),
    h('section', { class: 'card' }, h('h2', {}, 'Charts ', h('span', { class: 'muted' }, 'last 15 minutes')), charts),
    h('section', { class: 'card' }, h('h2', {}, 'Recent state changes ', h('span', { class: 'muted' }, 'last hour')), changes),
    h('section', { class: 'card' }, h('h2', {}, 'Jobs'), jobs));

  const GALERA_CHARTS = [
    ['Cluster size', `mysql_global_status_wsrep_cluster_size${sel}`, ''],
    ['Receive queue', `mysql_global_status_wsrep_local_recv_queue${sel}`, ''],
    ['Flow control paused (fraction of time)', `mysql_global_status_wsrep_flow_control_paused${sel}`, ''],
    ['Probe latency', `nines_probe_duration_seconds${sel} * 1000`, ' ms'],
    ['Commits per second', `rate(mysql_global_status_wsrep_last_committed${sel}[30s])`, '/s'],
  ];
  // An NDB cluster's: the fractions its rules watch, by data node.
  const NDB_CHARTS = [
    ['Data nodes serving', `sum(max by (node_id) (nines_ndb_node_up${selWith('type="NDB"')}))`, ''],
    ['DataMemory used (% of usable)', `100 * mysql_ndbinfo_memoryusage_used${selWith('memory_type="Data memory"')} / (0.95 * mysql_ndbinfo_memoryusage_total${selWith('memory_type="Data memory"')})`, ' %'],
    ['Redo log, fullest part (%)', `100 * max by (node_id) (mysql_ndbinfo_logspaces_bytes_used${selWith('log_type="REDO"')} / mysql_ndbinfo_logspaces_bytes_total${selWith('log_type="REDO"')})`, ' %'],
    ['Probe latency', `nines_probe_duration_seconds${sel} * 1000`, ' ms'],
  ];
  const label = (m) => (m.node_id ? `node ${m.node_id}` : m.instance || m.cluster || '');

  const drawCharts = every(5000, async () => {
    const end = Date.now() / 1000;
    const CHARTS = kind === 'ndb' ? NDB_CHARTS : GALERA_CHARTS;
    const res = await Promise.all(CHARTS.map(([, q]) => api.queryRange(q, CHART_WINDOW, CHART_STEP).catch((e) => e)));
    replace(charts, CHARTS.map(([title, , unit], i) => res[i] instanceof Error
      ? h('div', { class: 'chart' }, h('div', { class: 'title' }, title), h('p', { class: 'error' }, res[i].message))
      : lineChart(title, res[i], end - CHART_WINDOW, end, label, unit)));
  });

  // State changes are derived from the stored series: a node's state is
  // "down" where mysql_up is 0, else its wsrep_local_state; an NDB data
  // node's is up or down as the management server reports it.
  const drawChanges = every(5000, async () => {
    const [up, st, ndbUp] = await Promise.all([
      api.queryRange(`mysql_up${sel}`, CHANGES_WINDOW, CHANGES_STEP),
      kind === 'ndb' ? [] : api.queryRange(`mysql_global_status_wsrep_local_state${sel}`, CHANGES_WINDOW, CHANGES_STEP),
      kind === 'ndb' ? api.queryRange(`max by (node_id) (nines_ndb_node_up${selWith('type="NDB"')})`, CHANGES_WINDOW, CHANGES_STEP) : []]);
    const byNode = {};
    const at = (inst) => (byNode[inst] = byNode[inst] || {});
    for (const r of up) for (const [t, v] of r.values) if (v === '0') at(r.metric.instance)[t] = 'down';
    for (const r of st) for (const [t, v] of r.values) { const m = at(r.metric.instance); if (!m[t]) m[t] = STATE_NAMES[v] || `state ${v}`; }
    for (const r of ndbUp) for (const [t, v] of r.values) at(`data node ${r.metric.node_id}`)[t] = v === '0' ? 'down' : 'up';
    const rows = [];
    for (const [inst, m] of Object.entries(byNode)) {
      let prev = null;
      for (const t of Object.keys(m).map(Number).sort((a, b) => a - b)) {
        const v = m[t];
        if (prev !== null && v !== prev) rows.push({ t, inst, from: prev, to: v });
        prev = v;
      }
    }
    rows.sort((a, b) => b.t - a.t);
    replace(changes, table(['when', 'node', 'from', 'to'], rows.slice(0, 50).map((r) => h('tr', {},
      h('td', {}, `${when(r.t * 1000)} (${ago(r.t * 1000)})`), h('td', {}, r.inst), stateCell(r.from), stateCell(r.to))),
    'no state changes in the last hour'));
  });

  return {
    async refresh() {
      const d = await fleet.settle({ clusters: api.data(`/api/v1/clusters/${encodeURIComponent(name)}`), jobs: fleet.jobs(name), remediation: fleet.remediation() });
      if (!d.clusters) throw new Error(d.errors.clusters);
      const c = d.clusters;
      const word = clusterWord(c);
      replace(head, c.name, ' ', h('span', { class: `state state-${word}` }, word), ' ', h('span', { class: 'muted' }, c.kind),
        h('a', { href: `#/cluster/${encodeURIComponent(name)}/queries`, class: 'small', id: 'link-queries' }, 'query analytics'),
        h('a', { href: `#/cluster/${encodeURIComponent(name)}/blocking`, class: 'small', id: 'link-blocking' }, 'what blocks whom'),
        h('a', { href: `#/cluster/${encodeURIComponent(name)}/advice`, class: 'small', id: 'link-advice' }, 'advice'),
        h('a', { href: `#/cluster/${encodeURIComponent(name)}/drills`, class: 'small', id: 'link-drills' }, 'drills'));
      const rem = (d.remediation || []).find((r) => r.cluster === name);
      replace(facts,
        c.owner ? fact('watched by', c.leader ? `${c.owner} (this appliance)` : c.owner) : null,
        fact('remediation', rem ? rem.mode : '–'),
        fact('halted', rem && rem.halted ? rem.halted : 'no'),
        fact('recent recoveries', rem ? rem.recent_recoveries : '–'),
        fact('last decision', rem && rem.last_decision ? rem.last_decision : '–'),
        fact('not repaired', rem && rem.not_repaired ? rem.not_repaired : '–'));
      latest = c.nodes;
      kind = c.kind;
      replace(drift, driftTable(c.drift || [], c.nodes.map((n) => n.instance)));
      const ndb = c.kind === 'ndb';
      if (ndb) replace(topo, ndbTopology(c.ndb));
      else replace(topo, c.kind === 'replication' ? replTopology(ctx, name, c.nodes) : galeraTopology(c.nodes));
      // An NDB cluster's jobs name a data node: the form waits for the
      // first reading of its topology.
      if (!formBuilt && ctx.can('operator') && (!ndb || c.ndb)) {
        formBuilt = true;
        const resume = h('button', { type: 'button', class: 'secondary', id: 'resume', hidden: true }, 'Resume remediation');
        resume.addEventListener('click', () => ctx.act(`resume remediation of ${name}`, () => api.send('POST', `/api/v1/remediation/${encodeURIComponent(name)}/resume`)));
        replace(actions, h('h3', {}, 'Start a job'), startForm(ctx, name, ndb ? dataNodeIDs(c.ndb) : c.nodes.map((n) => n.instance), c.kind, () => primaryOf(latest)), ctx.can('admin') ? resume : null);
      }
      const resume = actions.querySelector('#resume');
      if (resume) resume.hidden = !(rem && rem.halted);
      replace(jobs, jobList((d.jobs || []).filter((j) => j.cluster === name), 20));
      await Promise.all([drawCharts(), drawChanges()]);
    },
  };
}
