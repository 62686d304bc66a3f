// drills.js: a cluster's failure drills with what each measured, as the
// uptime report lists them, and for admins on a cluster declared a drill
// target the form that starts one. A drill kills -9 production servers:
// the form asks first, naming them, and then follows the drill until it
// ends. The API decides again; its refusals are shown as it words them.

import * as api from './api.js';
import { h, replace, table, when, ask, duration } from './dom.js';

// following maps a cluster to the drill this page started on it,
// followed until it ends; kept across visits so coming back to the page
// still shows how it went.
const following = new Map();

function secs(v) { return typeof v === 'number' ? v.toFixed(1) : '–'; }

function row(d, followed) {
  const running = d.state === 'running';
  const fig = (key, v) => h('td', { class: 'num', dataset: { key } }, running ? '–' : v);
  return h('tr', { dataset: { drill: d.id, drillState: d.state }, class: d.id === followed ? 'followed' : null },
    h('td', {}, d.id), h('td', {}, d.scenario), h('td', {}, (d.victims || []).join(', ')),
    h('td', {}, when(d.start)),
    h('td', {}, h('span', { class: `state state-${d.state === 'done' ? 'succeeded' : d.state}` }, d.state), d.reason ? h('div', { class: 'error' }, d.reason) : null),
    fig('detection_seconds', secs(d.detection_seconds)), fig('failover_seconds', secs(d.failover_seconds)), fig('rto_seconds', secs(d.rto_seconds)),
    fig('stall_seconds', secs(d.stall_seconds)), fig('acked_writes', String(d.acked_writes)), fig('lost_writes', String(d.lost_writes)));
}

// progress says how the followed drill goes, in words.
function progress(id, d) {
  if (!d) return `drill ${id}: not listed yet`;
  const what = `drill ${d.id} (${d.scenario}, killed ${(d.victims || []).join(', ')})`;
  if (d.state === 'running') return `${what}: running for ${duration((Date.now() - Date.parse(d.start)) / 1000)}, waiting for nines to repair the cluster`;
  if (d.state === 'done') return `${what}: done; RTO ${secs(d.rto_seconds)} s, RPO ${d.lost_writes} acknowledged writes lost`;
  return `${what}: ${d.state}${d.reason ? ': ' + d.reason : ''}`;
}

// drillForm lets an admin start a drill on the target cluster name; each
// option names what its scenario kills now (scenarios() returns the
// latest offer of the cluster view). Built once so the choice survives
// refreshes.
function drillForm(name, scenarios, started) {
  const scenario = h('select', { name: 'scenario', id: 'drill-scenario' });
  const error = h('p', { class: 'error', id: 'drill-error', role: 'alert' });
  const form = h('form', { class: 'inline', id: 'start-drill' },
    h('label', {}, 'scenario', scenario), h('button', { type: 'submit' }, 'Start drill'));
  const label = (s) => (s.refused ? `${s.scenario} (not possible: ${s.refused})` : `${s.scenario}: kills ${s.kills.join(', ')}`);
  const update = () => {
    for (const s of scenarios()) {
      let o = scenario.querySelector(`option[value="${s.scenario}"]`);
      if (!o) scenario.append(o = h('option', { value: s.scenario }));
      o.textContent = label(s);
      o.disabled = !!s.refused;
    }
    if (scenario.selectedOptions[0] && scenario.selectedOptions[0].disabled) {
      const first = [...scenario.options].find((o) => !o.disabled);
      if (first) scenario.value = first.value;
    }
  };
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const s = scenarios().find((x) => x.scenario === scenario.value);
    if (!s || s.refused) return;
    const kills = s.kills.join(', ');
    const question = `Start a ${s.scenario} drill on ${name}? It kills -9 the MariaDB server process of ${kills}: `
      + `production servers, whose clients lose their connections. nines then repairs the cluster and measures `
      + `the detection time, the RTO, the longest write stall and the acknowledged writes lost (RPO).`;
    if (!(await ask(question, `Kill ${kills}`))) return;
    error.textContent = '';
    try {
      const r = await api.send('POST', `/api/v1/clusters/${encodeURIComponent(name)}/drills`, { scenario: s.scenario });
      started(r.data.id);
    } catch (e) {
      error.textContent = e.message; // the API's words
    }
  });
  return { el: h('div', {}, h('h3', {}, 'Start a drill'), form, error), update };
}

export default function drills(root, ctx, name) {
  const link = h('a', { href: `#/cluster/${encodeURIComponent(name)}` }, name);
  const follow = h('p', { id: 'drill-follow', role: 'status' });
  const list = h('div', { id: 'drills-table' });
  const admin = h('div', { id: 'drill-admin' });
  let offer = [];
  let form = null;
  replace(root, h('section', { class: 'card' },
    h('h2', {}, link, ' drills'),
    h('p', { class: 'muted' }, 'Failure drills: a real kill -9 of servers, repaired by nines. Detection: from the kill to nines seeing the node down; '
      + 'writes back (primary-kill): to the first write acknowledged after the kill; '
      + 'RTO: to the cluster whole again (every node Synced; for primary-kill, the old primary a replica of the new one); write stall: the drill writer\'s longest wait between two acknowledged writes; '
      + 'RPO: acknowledged writes missing at the end. The uptime report lists the same drills next to the incidents they caused.'),
    admin, follow, list));
  return {
    async refresh() {
      const base = `/api/v1/clusters/${encodeURIComponent(name)}`;
      const [recs, c] = await Promise.all([api.data(`${base}/drills`), ctx.can('admin') ? api.data(base) : null]);
      if (c) {
        offer = c.drill_scenarios || [];
        if (!offer.length) {
          replace(admin, h('p', { class: 'muted', id: 'drill-not-target' },
            `${name} is not a drill target: declare it with drill: {allowed: true} in its config to run drills from here.`));
        } else if (!form) {
          form = drillForm(name, () => offer, (id) => following.set(name, id));
          replace(admin, form.el);
        }
        if (form) form.update();
      }
      const sorted = [...(recs || [])].sort((a, b) => Date.parse(b.start) - Date.parse(a.start));
      const id = following.get(name) || '';
      replace(list, table(['drill', 'scenario', 'nodes killed', 'start', 'outcome', 'detection (s)', 'writes back (s)', 'RTO (s)', 'longest write stall (s)',
        'acknowledged writes', 'RPO (acknowledged writes lost)'], sorted.map((d) => row(d, id)), 'no drills yet'));
      follow.textContent = id ? progress(id, sorted.find((d) => d.id === id)) : '';
    },
  };
}
