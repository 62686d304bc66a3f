// ndb.js: an NDB cluster's topology as the clusters API's "ndb" object
// gives it: the node groups, each with its health and its data nodes
// (state, start phase, DataMemory and redo log bars), the management
// servers, the SQL nodes and the arbitrator.

import { h, table, ago, bytes, fact } from './dom.js';

// The ndb rule pack's thresholds, drawn on the bars: NdbDataMemoryHigh
// and NdbDataMemoryCritical at 80 and 90 % of the usable DataMemory (95 %
// of it: 5 % is kept for restarts), NdbRedoLogSpaceLow at 80 % of a redo
// log part.
export const MEMORY_MARKS = [80, 90];
export const REDO_MARKS = [80];

// dataNodeWord is a data node's state in one word: ndbinfo's while the
// node serves, else the management server's (NO_CONTACT for a stopped
// node), which is the fresher after a failure.
export function dataNodeWord(d) {
  const mgm = d.mgm_status && d.mgm_status !== 'UNKNOWN' ? d.mgm_status : '';
  if (d.up) return d.state !== 'UNKNOWN' ? d.state : mgm || 'UNKNOWN';
  if (d.state === 'STARTING' || mgm === 'STARTING') return 'STARTING';
  return mgm || d.state || 'UNKNOWN';
}

// tone maps an NDB state word to the page's colours.
function tone(word, up) {
  if (up) return 'ok';
  if (/^(STARTING|STOPPING|SINGLEUSER|CMVMI|RESTARTING)/.test(word)) return 'degraded';
  return 'down';
}

function pct(used, of) { return of > 0 ? (100 * used) / of : NaN; }

// bar is a used/of meter with tick marks at marks (percent); its colour
// turns warning at the first mark and bad at the last (or 90 %).
function bar(kind, used, of, marks, detail, title) {
  const p = pct(used, of);
  const fill = h('div', { class: 'fill' });
  const box = h('div', { class: 'bar', role: 'meter', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': Number.isFinite(p) ? p.toFixed(1) : null },
    fill, marks.map((m) => {
      const t = h('div', { class: 'mark', title: `${m} %` });
      t.style.left = `${m}%`;
      return t;
    }));
  const worst = marks.length > 1 ? marks[marks.length - 1] : 90;
  let level = 'ok';
  if (p >= worst) level = 'bad';
  else if (p >= marks[0]) level = 'warn';
  fill.style.width = `${Number.isFinite(p) ? Math.min(100, Math.max(0, p)) : 0}%`;
  box.classList.add(`bar-${level}`);
  return h('div', { class: 'usage', title, dataset: { bar: kind, pct: Number.isFinite(p) ? p.toFixed(1) : '', level } }, box,
    h('div', { class: 'small' }, h('span', { class: 'pct' }, Number.isFinite(p) ? `${p.toFixed(1)} %` : '–'), ' ', h('span', { class: 'muted' }, detail)));
}

function memoryBar(m) {
  if (!m) return h('span', { class: 'muted', dataset: { bar: 'memory', pct: '' } }, 'not read');
  return bar('memory', m.used, m.usable, MEMORY_MARKS,
    `${bytes(m.used)} of ${bytes(m.usable)} usable`,
    `DataMemory ${bytes(m.total)}, of which 95 % rows may use (5 % is kept for restarts); alerts at ${MEMORY_MARKS.join(' and ')} % of that`);
}

function redoBar(r) {
  if (!r) return h('span', { class: 'muted', dataset: { bar: 'redo', pct: '' } }, 'not read');
  return bar('redo', r.used, r.total, REDO_MARKS,
    `${bytes(r.used)} of ${bytes(r.total)}, part ${r.log_part}, the fullest of ${r.parts}`,
    `the fullest of the node's ${r.parts} redo log parts; alert at ${REDO_MARKS.join(' ')} %, writes fail when a part is full`);
}

function group(t, g) {
  return h('section', { class: `ndb-group ndb-group-${g.health}`, dataset: { group: g.id, health: g.health } },
    h('h3', {}, `Node group ${g.id} `, h('span', { class: `state state-${g.health}` }, g.health),
      h('span', { class: 'muted' }, ` ${g.up} of ${g.data_nodes.length} serving`)),
    table(['node', 'state', 'management server', 'DataMemory', 'redo log'], g.data_nodes.map((d) => {
      const w = dataNodeWord(d), tn = tone(w, d.up);
      return h('tr', { dataset: { ndbNode: d.node_id, state: w, up: d.up ? 'yes' : 'no' } },
        h('td', {}, `${d.node_id}`, d.node_id === t.president ? h('span', { class: 'muted small' }, ' president') : null),
        h('td', {}, h('span', { class: `state state-${tn}` }, w),
          w === 'STARTING' && d.start_phase ? h('span', { class: 'phase' }, ` phase ${d.start_phase}`) : null),
        h('td', { class: 'muted' }, d.mgm_status || ''),
        h('td', { class: 'meter' }, memoryBar(d.data_memory)),
        h('td', { class: 'meter' }, redoBar(d.redo)));
    }), 'no data nodes'));
}

function others(t, kind, nodes) {
  return table(['node', 'address', 'status', ''], nodes.map((n) => h('tr', { dataset: { ndbNode: n.node_id, role: kind, up: n.up ? 'yes' : 'no' } },
    h('td', {}, `${n.node_id}`), h('td', {}, n.address || '–'),
    h('td', {}, h('span', { class: `state state-${n.up ? 'ok' : 'down'}` }, n.up ? 'connected' : 'not connected'), h('span', { class: 'muted small' }, ` ${n.status}`)),
    h('td', {}, n.node_id === t.arbitrator ? h('span', { class: 'state', dataset: { arbitrator: 'yes' } }, 'arbitrator') : null))), 'none');
}

function arbitrator(t) {
  if (!t.arbitrator) return t.arbitration_state ? `none agreed (${t.arbitration_state})` : '–';
  return `node ${t.arbitrator} (${t.arbitration_state || '?'}${t.arbitration_agreed ? '' : ', not agreed'})`;
}

// ndbTopology is the cluster's "ndb" object as the page shows it; t is
// undefined until nines has read the cluster once.
export function ndbTopology(t) {
  if (!t) return h('p', { class: 'muted', id: 'ndb' }, 'not read yet: nines has not polled the management servers');
  return h('div', { id: 'ndb' },
    h('div', { class: 'facts' },
      fact('read', ago(t.read_at)),
      fact('management server', t.mgm || 'none answered'),
      fact('ndbinfo from', t.ndbinfo_from || 'no SQL node answered'),
      fact('event stream', t.event_stream || 'not listening'),
      fact('president', t.president ? `node ${t.president}` : '–'),
      fact('arbitrator', arbitrator(t), { id: 'ndb-arbitrator' })),
    (t.errors || []).length ? h('ul', { class: 'error' }, t.errors.map((e) => h('li', {}, e))) : null,
    h('div', { class: 'ndb-groups' }, t.node_groups.length ? t.node_groups.map((g) => group(t, g)) : h('p', { class: 'muted' }, 'no node groups known')),
    h('div', { class: 'ndb-others' },
      h('div', { id: 'ndb-mgm' }, h('h3', {}, 'Management servers'), others(t, 'mgm', t.management_servers)),
      h('div', { id: 'ndb-sql' }, h('h3', {}, 'SQL nodes'), others(t, 'sql', t.sql_nodes))));
}

// dataNodeIDs are the data nodes' ids, for the start-job form.
export function dataNodeIDs(t) {
  return t ? t.node_groups.flatMap((g) => g.data_nodes.map((d) => String(d.node_id))) : [];
}
