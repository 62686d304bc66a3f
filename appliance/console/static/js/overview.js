// overview.js: every cluster at a glance: its state, its nodes' Galera
// states, the SLO budget left, firing alerts, running jobs, last backup.

import * as fleet from './fleet.js';
import { h, replace, table, ago, stateWord, clusterWord, stateCell, fact } from './dom.js';

export default function overview(root) {
  const body = h('div', { class: 'grid', id: 'overview' });
  replace(root, body);
  return {
    async refresh() {
      const d = await fleet.settle({
        clusters: fleet.clusters(), alerts: fleet.firing(), jobs: fleet.jobs(),
        budgets: fleet.budgets(), backups: Promise.resolve(fleet.backupsNow()), remediation: fleet.remediation(),
      });
      if (!d.clusters) throw new Error(d.errors.clusters);
      replace(body, d.clusters.map((c) => card(c, d)));
    },
  };
}

function card(c, d) {
  const word = clusterWord(c);
  const alerts = (d.alerts || []).filter((a) => a.state === 'firing' && a.labels.cluster === c.name);
  const running = (d.jobs || []).filter((j) => j.cluster === c.name && fleet.active(j));
  const last = fleet.lastBackup(d.backups && d.backups.backups, c.name);
  const rem = (d.remediation || []).find((r) => r.cluster === c.name);
  const budget = d.budgets ? d.budgets[c.name] : undefined;
  return h('section', { class: 'card', dataset: { cluster: c.name, clusterState: word } },
    h('h2', {}, h('a', { href: `#/cluster/${encodeURIComponent(c.name)}` }, c.name),
      h('span', { class: `state state-${word}` }, word), h('span', { class: 'muted' }, c.kind)),
    h('div', { class: 'facts' },
      fact('SLO budget left', budget === undefined ? (d.budgets ? 'not computed yet' : '–') : `${budget.toFixed(1)} s`,
        { dataset: { budgetSeconds: budget === undefined ? '' : budget } }),
      fact('last backup', last ? ago(last.ended_at || last.started_at) : (d.backups ? 'none' : '–')),
      fact('remediation', rem ? (rem.halted ? `halted: ${rem.halted}` : rem.mode) : '–'),
      // Sharded team: the appliance that watches and repairs the cluster.
      c.owner ? fact('watched by', c.leader ? `${c.owner} (this appliance)` : c.owner, { dataset: { owner: c.owner } }) : null),
    table(['node', 'state', 'component', 'size', 'recv queue', 'read'],
      c.nodes.map((n) => {
        const w = stateWord(n), g = n.galera;
        return h('tr', { dataset: { node: n.instance, state: w } },
          h('td', {}, n.instance), stateCell(w),
          h('td', {}, g ? g.cluster_status : '', n.error ? h('div', { class: 'muted small' }, n.error) : null),
          h('td', {}, g ? g.cluster_size : ''), h('td', {}, g ? g.local_recv_queue : ''),
          h('td', { class: 'muted' }, n.scraped_at ? ago(n.scraped_at) : 'never'));
      })),
    h('h3', {}, `Firing alerts (${alerts.length})`),
    alerts.length ? h('ul', {}, alerts.map((a) => h('li', { class: `state-${a.labels.severity || 'warning'}` },
      `${a.labels.alertname}${a.labels.instance ? ' on ' + a.labels.instance : ''}`,
      a.annotations && a.annotations.summary ? h('span', { class: 'muted' }, ` — ${a.annotations.summary}`) : null)))
      : h('p', { class: 'muted' }, 'none'),
    h('h3', {}, `Running jobs (${running.length})`),
    running.length ? h('ul', {}, running.map((j) => h('li', {}, `${j.runbook}${j.target ? ' on ' + j.target : ''}: `,
      h('span', { class: `state state-${j.state}` }, j.state), ` (${j.trigger.source}${j.trigger.user ? ' by ' + j.trigger.user : ''}, ${ago(j.started_at || j.created_at)})`)))
      : h('p', { class: 'muted' }, 'none'));
}

