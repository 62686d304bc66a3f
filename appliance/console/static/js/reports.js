// reports.js: uptime reports. The appliance renders them
// (/api/v1/reports/uptime); this page only builds the link.

import * as fleet from './fleet.js';
import { h, replace } from './dom.js';

function day(d) { return d.toISOString().slice(0, 10); }

export default function reports(root) {
  const cluster = h('select', { name: 'cluster' });
  const now = new Date();
  const from = h('input', { type: 'date', name: 'from', value: day(new Date(now.getFullYear(), now.getMonth(), 1)) });
  const to = h('input', { type: 'date', name: 'to', value: day(now) });
  const format = h('select', { name: 'format' }, ['html', 'pdf', 'csv', 'json'].map((f) => h('option', { value: f }, f)));
  const link = h('a', { id: 'report-link', target: '_blank', rel: 'noopener' }, 'Open report');
  const update = () => {
    // Dates are whole UTC days to the report: from the start of `from`
    // to the end of `to`.
    const q = new URLSearchParams({ cluster: cluster.value, from: from.value, to: to.value, format: format.value });
    link.href = `/api/v1/reports/uptime?${q}`;
  };
  const form = h('form', { class: 'inline', id: 'report', onchange: update, onsubmit: (ev) => { ev.preventDefault(); update(); link.click(); } },
    h('label', {}, 'cluster', cluster), h('label', {}, 'from (UTC)', from), h('label', {}, 'to (UTC, inclusive)', to),
    h('label', {}, 'format', format), link);
  replace(root, h('section', { class: 'card' }, h('h2', {}, 'Uptime report'),
    h('p', { class: 'muted' }, 'Availability against the SLO over the chosen days, as management reads it.'), form));
  let filled = false;
  return {
    async refresh() {
      if (filled) return;
      const cs = await fleet.clusters();
      replace(cluster, cs.map((c) => h('option', { value: c.name }, c.name)));
      filled = true;
      update();
    },
  };
}
