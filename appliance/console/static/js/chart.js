// chart.js: small SVG line charts of a Prometheus range-query matrix, one
// line per series, with the y range, the time span and a legend.

import { h, s } from './dom.js';

const COLORS = ['#2457c5', '#c62828', '#1a7f37', '#b7791f', '#7b3fb5', '#00838f'];
const W = 400, H = 140, PAD = { l: 44, r: 6, t: 8, b: 16 };

function fmt(v) {
  const a = Math.abs(v);
  if (a >= 1e6) return (v / 1e6).toFixed(1) + 'M';
  if (a >= 1e3) return (v / 1e3).toFixed(1) + 'k';
  if (a >= 10 || v === 0) return v.toFixed(0);
  if (a >= 0.01) return v.toFixed(2);
  return v.toExponential(0);
}

// lineChart draws matrix (as /api/v1/query_range returns it) over the
// window [start, end] in seconds; label names each series.
export function lineChart(title, matrix, start, end, label, unit) {
  const series = matrix.map((m) => ({ name: label(m.metric), points: m.values.map(([t, v]) => [Number(t), Number(v)]).filter(([, v]) => Number.isFinite(v)) }));
  // The x axis starts at the first point when the store holds less than
  // the window (a new appliance), so a short history is not a sliver.
  const first = Math.min(...series.filter((x) => x.points.length).map((x) => x.points[0][0]));
  if (Number.isFinite(first) && first > start) start = Math.min(first, end - 60);
  let lo = Infinity, hi = -Infinity;
  for (const x of series) for (const [, v] of x.points) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  if (!Number.isFinite(lo)) { lo = 0; hi = 1; }
  if (lo > 0) lo = 0;
  if (hi === lo) hi = lo + 1;
  const X = (t) => PAD.l + ((t - start) / (end - start)) * (W - PAD.l - PAD.r);
  const Y = (v) => H - PAD.b - ((v - lo) / (hi - lo)) * (H - PAD.t - PAD.b);
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': title },
    s('line', { class: 'axis', x1: PAD.l, y1: Y(lo), x2: W - PAD.r, y2: Y(lo) }),
    s('line', { class: 'axis', x1: PAD.l, y1: PAD.t, x2: PAD.l, y2: H - PAD.b }),
    s('text', { x: PAD.l - 4, y: PAD.t + 8, 'text-anchor': 'end' }, fmt(hi)),
    s('text', { x: PAD.l - 4, y: H - PAD.b, 'text-anchor': 'end' }, fmt(lo)),
    s('text', { x: PAD.l, y: H - 3 }, end - start >= 120 ? `−${Math.round((end - start) / 60)} min` : `−${Math.round(end - start)} s`),
    s('text', { x: W - PAD.r, y: H - 3, 'text-anchor': 'end' }, 'now'),
    series.map((x, i) => {
      // A gap of more than three steps (a node that was down) breaks
      // the line rather than bridging it.
      let d = '', prev = null;
      const step = x.points.length > 1 ? x.points[1][0] - x.points[0][0] : 0;
      for (const [t, v] of x.points) {
        d += `${prev === null || t - prev > 3 * step ? 'M' : 'L'}${X(t).toFixed(1)},${Y(v).toFixed(1)}`;
        prev = t;
      }
      return s('path', { d, stroke: COLORS[i % COLORS.length] });
    }));
  const legend = h('div', { class: 'legend' }, series.map((x, i) => {
    const last = x.points.length ? x.points[x.points.length - 1][1] : NaN;
    const sw = h('i');
    sw.style.background = COLORS[i % COLORS.length];
    return h('span', {}, sw, `${x.name}: ${Number.isFinite(last) ? fmt(last) : '–'}${unit || ''}`);
  }));
  return h('div', { class: 'chart' }, h('div', { class: 'title' }, title), svg, legend,
    series.length ? null : h('div', { class: 'muted' }, 'no data'));
}
