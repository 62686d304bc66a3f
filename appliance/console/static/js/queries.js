// queries.js: query analytics of one cluster: the statement digests'
// work over a chosen window (per-interval deltas the appliance stored,
// summed), sortable by any column, per node or for the whole cluster.
// The store is read when the choice changes and every 10 s, not every
// second: the digests themselves are collected every 10 s.

import * as api from './api.js';
import { h, replace, duration } from './dom.js';

const WINDOWS = ['5m', '15m', '1h', '6h', '24h', '7d'];
const COLUMNS = [
  ['time', 'total time', (r) => duration(r.seconds)],
  ['calls', 'calls', (r) => num(r.calls)],
  ['avg_time', 'avg', (r) => ms(r.avg_seconds)],
  ['rows_examined', 'rows examined', (r) => num(r.rows_examined)],
  ['rows_sent', 'rows sent', (r) => num(r.rows_sent)],
  ['errors', 'errors', (r) => num(r.errors)],
  ['warnings', 'warnings', (r) => num(r.warnings)],
  ['full_scans', 'full scans', (r) => num(r.full_scans)],
  ['no_index_used', 'no index', (r) => num(r.no_index_used)],
  ['tmp_disk_tables', 'tmp disk tables', (r) => num(r.tmp_disk_tables)],
];
const REREAD_MS = 10000;

function num(v) { return v === undefined || v === null ? '–' : Math.round(v).toLocaleString(); }
function ms(s) { return s === undefined || s === null ? '–' : `${(s * 1000).toFixed(s < 0.01 ? 2 : 0)} ms`; }

export default function queries(root, ctx, name) {
  const q = new URLSearchParams(location.hash.split('?')[1] || '');
  const state = { window: q.get('window') || '15m', sort: q.get('sort') || 'time', node: '' };
  const windowSel = h('select', { id: 'qan-window', name: 'window' }, WINDOWS.map((w) => h('option', { value: w, selected: w === state.window }, w)));
  const nodeSel = h('select', { id: 'qan-node', name: 'node' }, h('option', { value: '' }, 'each node'), h('option', { value: '*' }, 'whole cluster'));
  const sortSel = h('select', { id: 'qan-sort', name: 'sort' }, COLUMNS.map(([k, label]) => h('option', { value: k, selected: k === state.sort }, label)));
  const nodesNote = h('div', { id: 'qan-nodes' });
  const list = h('div', { id: 'qan-digests' });
  const form = h('form', { class: 'inline', onsubmit: (ev) => ev.preventDefault() },
    h('label', {}, 'last', windowSel), h('label', {}, 'per', nodeSel), h('label', {}, 'sorted by', sortSel),
    h('button', { type: 'button', class: 'secondary', id: 'qan-reload', onclick: () => reread() }, 'Read again'));
  replace(root,
    h('section', { class: 'card' },
      h('h2', {}, h('a', { href: `#/cluster/${encodeURIComponent(name)}` }, name), ' query analytics',
        h('a', { href: `#/cluster/${encodeURIComponent(name)}/blocking`, class: 'small' }, 'what blocks whom')),
      h('p', { class: 'muted' }, 'The busiest statements by digest (the statement with its literals replaced), counted over the window, not since the server started.'),
      form, nodesNote),
    h('section', { class: 'card' }, list));

  // at is when the store was last read; a change of choice clears it so
  // the console's next tick (within a second) reads again.
  let at = 0;
  let nodesFilled = false;
  const reread = () => { at = 0; };
  for (const el of [windowSel, nodeSel, sortSel]) el.addEventListener('change', () => { state.window = windowSel.value; state.sort = sortSel.value; state.node = nodeSel.value; reread(); });

  function draw(d) {
    replace(nodesNote, d.nodes.filter((n) => n.digests !== 'on').map((n) =>
      h('p', { class: n.digests === 'unknown' ? 'muted' : 'error', dataset: { qanNode: n.instance, digests: n.digests } },
        `${n.instance}: `, n.digests === 'off' ? `no query analytics: ${n.why}` : n.digests === 'unknown' ? 'not read yet' : `cannot read digests: ${n.why}`)),
    h('p', { class: 'muted small' }, `Digests are read every ${d.interval_seconds} s; the ${d.top_n} busiest of each node in each interval are kept.`));
    if (!nodesFilled) {
      nodesFilled = true;
      for (const n of d.nodes) nodeSel.append(h('option', { value: n.instance }, n.instance));
    }
    const perNode = d.by === 'node';
    const head = [...(perNode ? ['node'] : []), 'statement',
      ...COLUMNS.map(([k, label]) => h('th', { class: k === d.sort ? 'sorted' : null, dataset: { sort: k },
        onclick: () => { sortSel.value = k; state.sort = k; reread(); } }, label, k === d.sort ? ' ▼' : ''))];
    const rows = d.digests.map((r) => h('tr', { dataset: { digest: r.digest, instance: r.instance || '', calls: r.calls, seconds: r.seconds } },
      perNode ? h('td', {}, r.instance) : null,
      h('td', { class: 'stmt' },
        // Long texts are clamped to a few lines; the whole one is the tooltip.
        h('code', { title: r.text || null }, r.text || `digest ${r.digest} (text not read since the appliance started)`),
        r.schema ? h('div', { class: 'muted small' }, `schema ${r.schema}`) : null,
        r.example ? h('details', {}, h('summary', { class: 'small' }, 'example'), h('pre', {}, r.example)) : null),
      COLUMNS.map(([, , f]) => h('td', { class: 'num' }, f(r)))));
    replace(list, rows.length
      ? h('table', { id: 'qan-table' }, h('thead', {}, h('tr', {}, head.map((x) => (x instanceof Node ? x : h('th', {}, x))))), h('tbody', {}, rows))
      : h('p', { class: 'muted' }, `no statements recorded in the last ${d.window}`));
  }

  return {
    async refresh() {
      if (Date.now() - at < REREAD_MS) return;
      at = Date.now();
      const params = { window: state.window, sort: state.sort, limit: '50' };
      if (state.node === '*') params.by = 'cluster';
      else if (state.node) params.node = state.node;
      draw(await api.data(`/api/v1/clusters/${encodeURIComponent(name)}/queries`, params));
    },
  };
}
