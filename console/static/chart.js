// A chart of a batch's lines per second over time, drawn on a canvas from the counts
// the job page polls. The API gives only the average since the batch started
// (lines_per_second), so the pace at each moment is worked out here from how many
// lines finished between polls.
import {fmtRate, h, isTerminal} from './ui.js';

const WINDOW = 3; // polls the pace is measured over, to smooth out commit groups
const MAX_POINTS = 600;

export function rateChart() {
  const canvas = h('canvas', {role: 'img', 'aria-label': 'Lines per second: no progress seen yet.'});
  const note = h('p', {class: 'chart-note', 'aria-hidden': 'true'});
  const el = h('div', {class: 'chart'}, canvas, note);
  const now = h('span', {class: 'num'}, '—');
  const avg = h('span', {class: 'num'}, '—');
  const legend = h('p', {class: 'legend muted'},
    h('span', {class: 'key key-now', 'aria-hidden': 'true'}), 'now ', now,
    h('span', {class: 'key key-avg', 'aria-hidden': 'true'}), 'average ', avg);

  const samples = []; // {t: ms, done}
  const points = []; // {t: ms, rate}
  let average = null;
  let status = null;
  let t0 = null;

  function add(b) {
    status = b.status;
    const c = b.request_counts;
    const done = c.completed + c.failed;
    average = b.lines_per_second ?? averageOf(b);
    const running = b.status === 'in_progress' || b.status === 'finalizing' || b.status === 'cancelling';
    if (running || (isTerminal(b.status) && samples.length > 0 && samples[samples.length - 1].done !== done)) {
      const t = Date.now();
      t0 ??= t;
      samples.push({t, done});
      if (samples.length > 1) {
        const i = Math.max(0, samples.length - 1 - WINDOW);
        const a = samples[i];
        const z = samples[samples.length - 1];
        points.push({t, rate: z.t > a.t ? ((z.done - a.done) / (z.t - a.t)) * 1000 : 0});
        if (points.length > MAX_POINTS) points.shift();
      }
      if (samples.length > MAX_POINTS) samples.shift();
    }
    now.textContent = points.length && !isTerminal(status) ? `${fmtRate(points[points.length - 1].rate)}/s` : '—';
    avg.textContent = average != null ? `${fmtRate(average)}/s` : '—';
    const peak = points.reduce((m, p) => Math.max(m, p.rate), 0);
    canvas.setAttribute('aria-label', points.length
      ? `Lines per second over the last ${Math.round((points[points.length - 1].t - t0) / 1000)} seconds: `
        + `latest ${fmtRate(points[points.length - 1].rate)}, peak ${fmtRate(peak)}, average ${fmtRate(average)}.`
      : `Lines per second: ${average != null ? `average ${fmtRate(average)}` : 'no progress seen yet'}.`);
    draw();
  }

  function draw() {
    const rect = canvas.getBoundingClientRect();
    if (rect.width === 0 || rect.height === 0) return;
    const dpr = window.devicePixelRatio || 1;
    const w = Math.round(rect.width * dpr);
    const hgt = Math.round(rect.height * dpr);
    if (canvas.width !== w || canvas.height !== hgt) {
      canvas.width = w;
      canvas.height = hgt;
    }
    const ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const W = rect.width;
    const H = rect.height;
    ctx.clearRect(0, 0, W, H);
    const css = getComputedStyle(canvas);
    const color = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
    const font = `12px ${css.fontFamily}`;
    const pad = {l: 44, r: 12, t: 10, b: 22};
    const pw = W - pad.l - pad.r;
    const ph = H - pad.t - pad.b;

    const maxRate = Math.max(average ?? 0, ...points.map((p) => p.rate), 1);
    const top = niceCeil(maxRate * 1.1);
    const y = (v) => pad.t + ph - (v / top) * ph;

    ctx.font = font;
    ctx.textBaseline = 'middle';
    ctx.lineWidth = 1;
    for (let i = 0; i <= 4; i++) {
      const v = (top / 4) * i;
      const yy = Math.round(y(v)) + 0.5;
      ctx.strokeStyle = color('--chart-grid', '#ddd');
      ctx.beginPath();
      ctx.moveTo(pad.l, yy);
      ctx.lineTo(W - pad.r, yy);
      ctx.stroke();
      ctx.fillStyle = color('--muted', '#666');
      ctx.textAlign = 'right';
      ctx.fillText(fmtRate(v), pad.l - 6, yy);
    }

    const span = points.length > 1 ? points[points.length - 1].t - points[0].t : 0;
    const x = (t) => pad.l + (span > 0 ? ((t - points[0].t) / span) * pw : pw);

    if (average != null) {
      ctx.strokeStyle = color('--chart-avg', '#888');
      ctx.setLineDash([5, 4]);
      ctx.beginPath();
      ctx.moveTo(pad.l, y(average));
      ctx.lineTo(W - pad.r, y(average));
      ctx.stroke();
      ctx.setLineDash([]);
    }

    if (points.length > 1) {
      ctx.beginPath();
      ctx.moveTo(x(points[0].t), y(0));
      for (const p of points) ctx.lineTo(x(p.t), y(p.rate));
      ctx.lineTo(x(points[points.length - 1].t), y(0));
      ctx.closePath();
      ctx.fillStyle = color('--chart-fill', 'rgba(37,99,235,.15)');
      ctx.fill();
      ctx.beginPath();
      points.forEach((p, i) => (i ? ctx.lineTo(x(p.t), y(p.rate)) : ctx.moveTo(x(p.t), y(p.rate))));
      ctx.strokeStyle = color('--chart-line', '#2563eb');
      ctx.lineWidth = 2;
      ctx.stroke();
      ctx.lineWidth = 1;
      ctx.fillStyle = color('--muted', '#666');
      ctx.textBaseline = 'alphabetic';
      ctx.textAlign = 'left';
      ctx.fillText(`${Math.round((points[0].t - t0) / 1000)}s`, pad.l, H - 6);
      ctx.textAlign = 'right';
      ctx.fillText(`${Math.round((points[points.length - 1].t - t0) / 1000)}s`, W - pad.r, H - 6);
    }
    let text = '';
    if (points.length < 2) {
      text = 'Waiting for lines to finish…';
      if (status && isTerminal(status)) {
        text = average != null ? 'It ran too briefly while this page was open to draw its pace; the dashed line is its average.' : 'No lines ran.';
      }
    }
    if (note.textContent !== text) note.textContent = text;
    note.hidden = text === '';
  }

  const resize = new ResizeObserver(() => draw());
  resize.observe(canvas);
  const scheme = window.matchMedia('(prefers-color-scheme: dark)');
  scheme.addEventListener('change', draw);

  return {
    el,
    legend,
    add,
    points: () => points.slice(),
    destroy() {
      resize.disconnect();
      scheme.removeEventListener('change', draw);
    },
  };
}

// niceCeil rounds up to 1, 2 or 5 times a power of ten.
function niceCeil(v) {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function averageOf(b) {
  const start = b.in_progress_at;
  const end = b.completed_at ?? b.failed_at ?? b.cancelled_at ?? b.expired_at ?? b.finalizing_at;
  const done = b.request_counts.completed + b.request_counts.failed;
  if (!start || !end || done === 0) return null;
  return done / Math.max(1, end - start);
}
