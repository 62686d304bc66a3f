// backups.js: every backup the agents hold, the latest verification of
// each, and the schedules; an operator may start a backup or a verify.

import * as api from './api.js';
import * as fleet from './fleet.js';
import { h, replace, table, ago, when, duration, bytes } from './dom.js';

export default function backups(root, ctx) {
  const scheds = h('div', { id: 'schedules' });
  const list = h('div', { id: 'backups' });
  const actions = h('div', { class: 'inline', id: 'backup-actions' });
  let built = false;
  replace(root,
    h('section', { class: 'card' }, h('h2', {}, 'Schedules'), actions, scheds),
    h('section', { class: 'card' }, h('h2', {}, 'Backups ', h('span', { class: 'muted' }, 'read from the agents every 15 s')), list));
  const start = (req, what) => ctx.act(what, () => api.send('POST', '/api/v1/jobs', req));

  return {
    async refresh() {
      const d = await fleet.settle({ backups: fleet.backups(), clusters: fleet.clusters() });
      if (!d.backups) throw new Error(d.errors.backups);
      if (!built && d.clusters && ctx.can('operator')) {
        built = true;
        replace(actions, d.clusters.map((c) => h('button', { type: 'button', dataset: { startBackup: c.name },
          onclick: () => start({ cluster: c.name, kind: 'backup' }, `start a backup of ${c.name}`) }, `Back up ${c.name} now`)));
      }
      replace(scheds, table(['cluster', 'method', 'schedule', 'next', 'started', 'skipped', 'last error'],
        d.backups.schedules.map((s) => h('tr', {}, h('td', {}, s.cluster), h('td', {}, s.method), h('td', {}, s.schedule),
          h('td', {}, when(s.next)), h('td', {}, s.started), h('td', {}, s.skipped), h('td', { class: 'error' }, s.last_error || ''))),
        'no backup schedules configured'));
      replace(list, table(['cluster', 'id', 'method', 'node', 'taken', 'took', 'size', 'state', 'verified', ''],
        d.backups.backups.map((b) => {
          const v = b.verification;
          return h('tr', { dataset: { backup: b.id } }, h('td', {}, b.cluster), h('td', {}, b.id), h('td', {}, b.method),
            h('td', {}, b.source || b.node), h('td', {}, `${when(b.started_at)} (${ago(b.started_at)})`),
            h('td', {}, duration(b.duration_seconds)), h('td', {}, bytes(b.size_bytes)),
            h('td', {}, h('span', { class: `state state-${b.state}` }, b.running ? 'running' : b.state), b.error ? h('div', { class: 'error' }, b.error) : null),
            h('td', {}, v ? h('span', { class: `state state-${v.ok ? 'ok' : 'failed'}` }, v.ok ? `ok, ${ago(v.at)} (restore ${duration(v.restore_seconds)})` : `failed: ${v.failure}`) : 'never'),
            h('td', {}, ctx.can('operator') && b.state === 'complete'
              ? h('button', { type: 'button', class: 'secondary', onclick: () => start({ cluster: b.cluster, kind: 'verify', backup_id: b.id }, `verify ${b.id}`) }, 'Verify')
              : null));
        }), 'no backups yet'));
    },
  };
}
