// blocking.js: what blocks whom on each node of a cluster, now: open
// transactions, row lock waits with the waiting and the holding
// statements, metadata locks somebody waits for, and Galera's flow
// control. Read when the page opens and when asked, never on the
// console's every-second refresh: each read runs a statement on every
// node.

import * as api from './api.js';
import { h, replace, onDemand, table, duration, when } from './dom.js';

function stmt(s) { return s ? h('code', {}, s) : h('span', { class: 'muted' }, '(none running: idle in its transaction)'); }

function nodeCard(n) {
  if (n.error) return h('section', { class: 'card', dataset: { blockingNode: n.instance } }, h('h3', {}, n.instance), h('p', { class: 'error' }, n.error));
  const waits = table(['waiting', 'waiting statement', 'for', 'held by', 'holder runs', 'holder\'s recent statements', 'lock'],
    n.lock_waits.map((w) => h('tr', { dataset: { lockWait: `${w.waiting_id}-${w.blocking_id}`, waitSeconds: w.wait_seconds } },
      h('td', {}, `#${w.waiting_id}`), h('td', { class: 'stmt' }, stmt(w.waiting_statement)), h('td', {}, duration(w.wait_seconds)),
      h('td', {}, `#${w.blocking_id}`), h('td', { class: 'stmt' }, stmt(w.blocking_statement)),
      h('td', { class: 'stmt' }, w.blocking_recent_statements.length
        ? w.blocking_recent_statements.map((s) => h('div', {}, h('code', {}, s)))
        : h('span', { class: 'muted' }, n.performance_schema ? '–' : 'unknown (performance_schema off)')),
      h('td', { class: 'small' }, [w.table, w.index, w.mode].filter(Boolean).join(' ')))),
    'no lock waits');
  const trx = table(['connection', 'state', 'open for', 'rows locked', 'rows modified', 'user', 'db', 'statement'],
    n.transactions.map((t) => h('tr', { dataset: { trx: t.id } }, h('td', {}, `#${t.id}`),
      h('td', { class: t.state === 'LOCK WAIT' ? 'state state-warning' : null }, t.state), h('td', {}, duration(t.age_seconds)),
      h('td', {}, t.rows_locked), h('td', {}, t.rows_modified), h('td', {}, `${t.user}@${t.host}`), h('td', {}, t.db),
      h('td', { class: 'stmt' }, stmt(t.statement)))),
    'no open transactions');
  const mdl = n.performance_schema
    ? table(['connection', 'table', 'lock', 'status', 'for', 'statement'],
      n.metadata_locks.map((m) => h('tr', { dataset: { mdl: m.status } }, h('td', {}, `#${m.id}`), h('td', {}, `${m.schema}.${m.name}`),
        h('td', {}, m.lock_type), h('td', { class: m.status === 'PENDING' ? 'state state-warning' : null }, m.status),
        h('td', {}, duration(m.seconds)), h('td', { class: 'stmt' }, stmt(m.statement)))),
      'nobody waits for a metadata lock')
    : h('p', { class: 'error' }, 'Metadata locks unknown: performance_schema is off on this node.');
  const g = n.galera;
  const fc = g ? h('div', { class: 'facts', id: `fc-${n.instance}` },
    h('div', {}, h('span', {}, 'flow control sent'), h('span', {}, g.flow_control_sent)),
    h('div', {}, h('span', {}, 'flow control received'), h('span', {}, g.flow_control_recv)),
    h('div', {}, h('span', {}, 'paused (since FLUSH STATUS)'), h('span', {}, g.flow_control_paused.toFixed(4))),
    h('div', {}, h('span', {}, 'paused in all'), h('span', {}, duration(g.flow_control_paused_seconds))),
    h('div', {}, h('span', {}, 'receive queue (avg)'), h('span', {}, `${g.recv_queue} (${g.recv_queue_avg.toFixed(2)})`)),
    h('div', {}, h('span', {}, 'certification failures'), h('span', {}, g.cert_failures)),
    h('div', {}, h('span', {}, 'brute-force aborts'), h('span', {}, g.bf_aborts))) : null;
  return h('section', { class: 'card', dataset: { blockingNode: n.instance } },
    h('h3', {}, n.instance, n.performance_schema ? '' : h('span', { class: 'error' }, ' performance_schema off')),
    fc, h('h4', {}, 'Row lock waits'), waits, h('h4', {}, 'Open transactions, oldest first'), trx, h('h4', {}, 'Metadata locks waited for'), mdl);
}

export default function blocking(root, ctx, name) {
  const stamp = h('span', { class: 'muted', id: 'blocking-read-at' });
  const nodes = h('div', { id: 'blocking-nodes', class: 'page' });
  const read = onDemand('blocking-read', async () => {
    const d = await api.data(`/api/v1/clusters/${encodeURIComponent(name)}/blocking`);
    replace(stamp, `read ${when(d.read_at)}`);
    replace(nodes, d.nodes.map(nodeCard));
  });
  replace(root,
    h('section', { class: 'card' },
      h('h2', {}, h('a', { href: `#/cluster/${encodeURIComponent(name)}` }, name), ' what blocks whom',
        h('a', { href: `#/cluster/${encodeURIComponent(name)}/queries`, class: 'small' }, 'query analytics')),
      h('p', { class: 'muted' }, 'Read from every node on demand (one statement each). Galera conflicts per table are not known: MariaDB counts certification failures and brute-force aborts per node (wsrep_log_conflicts writes the tables to the error log).'),
      h('div', { class: 'inline' }, read.button, ' ', stamp)),
    nodes);
  return { refresh: read.refresh };
}
