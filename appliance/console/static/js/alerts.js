// alerts.js: alerts nines' rules fire now, and the embedded
// Alertmanager's silences; an operator may silence an alert and expire a
// silence.

import * as api from './api.js';
import * as fleet from './fleet.js';
import { h, replace, table, ago, when, duration } from './dom.js';

const AM = '/alertmanager/api/v2';

function matchersText(ms) {
  return ms.map((m) => `${m.name}${m.isEqual === false ? '!' : ''}${m.isRegex ? '=~' : '='}"${m.value}"`).join(', ');
}

// parseMatchers reads `a="x", b=~"y.*"` (quotes optional).
function parseMatchers(text) {
  const out = [];
  for (const part of text.split(',').map((x) => x.trim()).filter(Boolean)) {
    const m = part.match(/^([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"?(.*?)"?$/);
    if (!m) throw new Error(`matcher ${JSON.stringify(part)}: want name="value"`);
    out.push({ name: m[1], value: m[3], isRegex: m[2].includes('~'), isEqual: !m[2].startsWith('!') });
  }
  if (!out.length) throw new Error('a silence needs at least one matcher');
  return out;
}

export default function alerts(root, ctx) {
  const firing = h('div', { id: 'alerts' });
  const silences = h('div', { id: 'silences' });
  const matchers = h('input', { name: 'matchers', size: 48, placeholder: 'alertname="GaleraNodeDown", cluster="billing"' });
  const hours = h('input', { name: 'hours', type: 'number', min: '0.1', step: '0.1', value: '1', size: 4 });
  const comment = h('input', { name: 'comment', size: 30, placeholder: 'why (required)' });
  const form = h('form', { class: 'inline', id: 'new-silence' },
    h('label', {}, 'matchers', matchers), h('label', {}, 'hours', hours), h('label', {}, 'comment', comment),
    h('button', { type: 'submit' }, 'Create silence'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    ctx.act('create silence', async () => {
      const now = new Date();
      const body = {
        matchers: parseMatchers(matchers.value), startsAt: now.toISOString(),
        endsAt: new Date(now.getTime() + Number(hours.value) * 3600e3).toISOString(),
        createdBy: ctx.user, comment: comment.value || 'silenced from the nines console',
      };
      return api.send('POST', `${AM}/silences`, body);
    });
  });
  replace(root,
    h('section', { class: 'card' }, h('h2', {}, 'Alerts'), firing),
    h('section', { class: 'card' }, h('h2', {}, 'Silences'), ctx.can('operator') ? form : null, silences));

  // silence fills the form from an alert's identifying labels.
  const silence = (a) => {
    const keep = ['alertname', 'cluster', 'instance'].filter((k) => a.labels[k]);
    matchers.value = keep.map((k) => `${k}="${a.labels[k]}"`).join(', ');
    comment.focus();
  };

  return {
    async refresh() {
      const d = await fleet.settle({ alerts: fleet.firing(), silences: api.get(`${AM}/silences`) });
      if (!d.alerts) throw new Error(d.errors.alerts);
      const list = [...d.alerts].sort((a, b) => (a.state === b.state ? 0 : a.state === 'firing' ? -1 : 1));
      replace(firing, table(['state', 'alert', 'cluster', 'instance', 'severity', 'since', 'summary', ''],
        list.map((a) => h('tr', { dataset: { alert: a.labels.alertname } },
          h('td', {}, h('span', { class: `state state-${a.state === 'firing' ? 'firing' : 'pending'}` }, a.state)),
          h('td', {}, a.labels.alertname), h('td', {}, a.labels.cluster || ''), h('td', {}, a.labels.instance || ''),
          h('td', {}, a.labels.severity || ''), h('td', {}, a.activeAt ? ago(a.activeAt) : ''),
          h('td', {}, (a.annotations && a.annotations.summary) || ''),
          h('td', {}, ctx.can('operator') ? h('button', { type: 'button', class: 'secondary', onclick: () => silence(a) }, 'Silence…') : null))),
        'no alerts are firing or pending'));
      if (d.silences === null) {
        replace(silences, h('p', { class: 'muted' }, `Silences are not available: ${d.errors.silences}`));
        return;
      }
      const order = { active: 0, pending: 1, expired: 2 };
      const sl = [...d.silences].filter((x) => x.status.state !== 'expired' || Date.now() - Date.parse(x.endsAt) < 86400e3)
        .sort((a, b) => order[a.status.state] - order[b.status.state] || Date.parse(b.startsAt) - Date.parse(a.startsAt));
      replace(silences, table(['state', 'matchers', 'from', 'until', 'by', 'comment', ''],
        sl.map((x) => h('tr', { dataset: { silence: x.id } },
          h('td', {}, h('span', { class: `state state-${x.status.state === 'active' ? 'warning' : 'muted'}` }, x.status.state)),
          h('td', {}, matchersText(x.matchers)), h('td', {}, when(x.startsAt)),
          h('td', {}, `${when(x.endsAt)}${x.status.state === 'active' ? ` (in ${duration((Date.parse(x.endsAt) - Date.now()) / 1000)})` : ''}`),
          h('td', {}, x.createdBy), h('td', {}, x.comment),
          h('td', {}, ctx.can('operator') && x.status.state !== 'expired'
            ? h('button', { type: 'button', class: 'secondary', onclick: () => ctx.act('expire silence', () => api.send('DELETE', `${AM}/silence/${encodeURIComponent(x.id)}`)) }, 'Expire')
            : null))),
        'no silences in the last day'));
    },
  };
}
