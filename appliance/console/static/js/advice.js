// advice.js: recommendations drawn from what nines measured on a Galera
// cluster: each node's IST window (how long it may be down and still
// rejoin without a full SST) against the time a restart takes, and the
// eviction timeouts against the write stalls measured. Read when the page
// opens and when asked: it reads a week of probe writes.

import * as api from './api.js';
import { h, replace, onDemand, table, duration, fact } from './dom.js';

const topics = { ist_window: 'IST window', eviction: 'node crash: eviction' };

function row(a) {
  return h('tr', { dataset: { adviceTopic: a.topic, adviceNode: a.node, warning: a.warning ? 'yes' : 'no' } },
    h('td', {}, a.node), h('td', {}, topics[a.topic] || a.topic),
    h('td', { class: a.warning ? 'error' : '' }, a.measured), h('td', {}, h('code', {}, a.setting)),
    h('td', {}, a.suggestion), h('td', { class: 'muted' }, a.risk));
}

export default function advice(root, ctx, name) {
  const facts = h('div', { class: 'facts', id: 'advice-facts' });
  const body = h('div', { id: 'advice-table' });
  const errors = h('div', { id: 'advice-errors' });
  const read = onDemand('advice-read', async () => {
    const d = await api.data(`/api/v1/clusters/${encodeURIComponent(name)}/advice`);
    replace(facts,
      fact('a restart takes', duration(d.restart_seconds)),
      fact('longest restart measured', d.measured_restart_seconds ? duration(d.measured_restart_seconds) : 'none yet'),
      fact(d.drill ? `write stall of drill ${d.drill}` : 'longest probe write, 7 days', duration(d.stall_seconds)));
    replace(body, d.note ? h('p', { class: 'muted' }, d.note)
      : table(['node', 'topic', 'measured', 'setting', 'suggestion', 'risk'], d.advice.map(row), 'no advice yet'));
    replace(errors, d.errors.map((e) => h('p', { class: 'error' }, e)));
  });
  replace(root,
    h('section', { class: 'card' },
      h('h2', {}, h('a', { href: `#/cluster/${encodeURIComponent(name)}` }, name), ' advice'),
      h('p', { class: 'muted' }, 'From measurements: the gcache fill rate of the last 10 minutes, the longest node restart nines ran (at least 10 minutes), the write stall of the latest node-crash drill (else the longest probe write of the last 7 days).'),
      h('div', { class: 'inline' }, read.button), facts, body, errors));
  return { refresh: read.refresh };
}
