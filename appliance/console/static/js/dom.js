// dom.js: building elements and formatting values. Text always goes in
// as text nodes, never as HTML, so nothing the API returns can inject
// markup.

const SVG = 'http://www.w3.org/2000/svg';

function build(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// h makes an HTML element: h('td', {class: 'x'}, 'text', child, ...).
export function h(tag, attrs, ...children) { return build(document.createElement(tag), attrs, children); }

// s makes an SVG element.
export function s(tag, attrs, ...children) { return build(document.createElementNS(SVG, tag), attrs, children); }

// replace swaps el's children for the new ones, in place.
export function replace(el, ...children) {
  el.replaceChildren();
  build(el, {}, children);
}

// table makes a table with a header row and rows of cells.
export function table(head, rows, empty) {
  if (!rows.length && empty) return h('p', { class: 'muted' }, empty);
  return h('table', {}, h('thead', {}, h('tr', {}, head.map((x) => h('th', {}, x)))), h('tbody', {}, rows));
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return '–';
  const neg = seconds < 0;
  let v = Math.abs(seconds);
  let out;
  if (v < 60) out = `${v.toFixed(v < 10 ? 1 : 0)} s`;
  else if (v < 3600) out = `${Math.floor(v / 60)} min ${Math.round(v % 60)} s`;
  else if (v < 86400) out = `${Math.floor(v / 3600)} h ${Math.round((v % 3600) / 60)} min`;
  else out = `${Math.floor(v / 86400)} d ${Math.round((v % 86400) / 3600)} h`;
  return neg ? '−' + out : out;
}

export function ago(time) {
  if (!time) return '–';
  const t = typeof time === 'number' ? time : Date.parse(time);
  if (Number.isNaN(t)) return '–';
  return duration((Date.now() - t) / 1000) + ' ago';
}

export function when(time) {
  if (!time) return '–';
  const d = new Date(time);
  return Number.isNaN(d.getTime()) ? '–' : d.toLocaleString();
}

export function bytes(n) {
  if (n === undefined || n === null) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

// stateWord is a node's state in one word: down when nines cannot read
// it; for Galera the member state when in a Primary component.
export function stateWord(node) {
  if (!node.up) return 'down';
  const g = node.galera;
  if (!g) return 'up';
  if (g.cluster_status !== 'Primary') return 'non-Primary';
  switch (g.local_state) {
    case 4: return 'Synced';
    case 2: return 'Donor';
    case 1: return 'Joining';
    case 3: return 'Joined';
    default: return g.local_state_comment || 'Initialized';
  }
}

// clusterWord sums a cluster up: healthy when every node is Synced (or up,
// for other kinds), down when none is, degraded in between. An NDB
// cluster is also down when a node group is lost (it cannot serve) and
// degraded while one is degraded.
export function clusterWord(cluster) {
  const good = cluster.nodes.filter((n) => ['Synced', 'up'].includes(stateWord(n))).length;
  const groups = cluster.ndb ? cluster.ndb.node_groups.map((g) => g.health) : [];
  if (groups.includes('lost') || good === 0) return 'down';
  if (good === cluster.nodes.length && !groups.includes('degraded')) return 'healthy';
  return 'degraded';
}

export function stateCell(word, attrs) {
  return h('td', attrs, h('span', { class: `state state-${word}` }, word));
}

export function fact(label, value, attrs) {
  return h('div', attrs, h('span', {}, label), h('span', {}, value));
}

// ask shows question in a modal dialog with a button labelled yes and
// Cancel; it resolves true only when the user clicked yes (false at once
// while another question is open). The dialog lives outside the page's
// view, so refreshes do not take it away.
export function ask(question, yes) {
  if (document.getElementById('confirm')) return Promise.resolve(false);
  return new Promise((resolve) => {
    const dlg = h('dialog', { id: 'confirm' },
      h('form', { method: 'dialog' }, h('p', {}, question),
        h('div', { class: 'inline' },
          h('button', { value: 'yes' }, yes),
          h('button', { value: 'no', class: 'secondary', autofocus: true }, 'Cancel'))));
    dlg.addEventListener('close', () => { dlg.remove(); resolve(dlg.returnValue === 'yes'); });
    document.body.append(dlg);
    dlg.showModal();
  });
}

// onDemand is a page read when it opens and when its "Read again" button
// (id) is pressed, never on the console's every-second refresh: for pages
// whose read costs the servers something. load does the read; the page's
// refresh is the returned refresh.
export function onDemand(id, load) {
  let want = true;
  const button = h('button', { type: 'button', id, onclick: () => { want = true; } }, 'Read again');
  return {
    button,
    async refresh() {
      if (!want) return;
      want = false;
      button.disabled = true;
      try {
        await load();
      } finally {
        button.disabled = false;
      }
    },
  };
}
