// DOM helpers, formatters and the small widgets every view shares.

// h builds an element: h('a', {href: '#/', class: 'x'}, 'text', child). Attributes
// whose value is null, undefined or false are left out; on* functions become
// listeners; children that are null or false are skipped.
export function h(tag, attrs = {}, ...children) {
  const el = tag.startsWith('svg:')
    ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4))
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// setText sets an element's text only when it changed, so a poll that changes
// nothing touches nothing.
export function setText(el, text) {
  text = String(text);
  if (el.textContent !== text) el.textContent = text;
}

export const TERMINAL = new Set(['completed', 'failed', 'expired', 'cancelled']);
export const isTerminal = (status) => TERMINAL.has(status);

const STATUS_TEXT = {
  validating: 'Validating',
  in_progress: 'In progress',
  finalizing: 'Finalizing',
  completed: 'Completed',
  failed: 'Failed',
  expired: 'Expired',
  cancelling: 'Cancelling',
  cancelled: 'Cancelled',
};
export const statusText = (s) => STATUS_TEXT[s] ?? s;

// statusPill shows a batch status as a coloured dot and its name; data-status holds
// the wire value, for styles and tests.
export function statusPill(status) {
  const el = h('span', {class: 'pill'}, h('span', {class: 'dot', 'aria-hidden': 'true'}), h('span', {class: 'pill-text'}));
  updateStatusPill(el, status);
  return el;
}

export function updateStatusPill(el, status) {
  if (el.dataset.status === status) return;
  el.dataset.status = status;
  el.querySelector('.pill-text').textContent = statusText(status);
}

const intFormat = new Intl.NumberFormat();
const compactFormat = new Intl.NumberFormat(undefined, {notation: 'compact', maximumFractionDigits: 1});
const rateFormat = new Intl.NumberFormat(undefined, {maximumFractionDigits: 1});

export const fmtInt = (n) => intFormat.format(n ?? 0);
export const fmtCompact = (n) => compactFormat.format(n ?? 0);
export const fmtRate = (n) => (n == null ? '—' : rateFormat.format(n));

export function fmtBytes(n) {
  if (n == null) return '—';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
}

const timeFormat = new Intl.DateTimeFormat(undefined, {hour: '2-digit', minute: '2-digit', second: '2-digit'});
const dateTimeFormat = new Intl.DateTimeFormat(undefined, {
  month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
});
const fullFormat = new Intl.DateTimeFormat(undefined, {dateStyle: 'full', timeStyle: 'long'});

// fmtTime shows a unix time as a time of day when it is today, else with its date.
export function fmtTime(unix) {
  if (unix == null) return '—';
  const d = new Date(unix * 1000);
  const today = new Date();
  return d.toDateString() === today.toDateString() ? timeFormat.format(d) : dateTimeFormat.format(d);
}

// timeEl is a <time> with a machine-readable value and the full date as its title.
export function timeEl(unix) {
  if (unix == null) return h('span', {class: 'muted'}, '—');
  const d = new Date(unix * 1000);
  return h('time', {datetime: d.toISOString(), title: fullFormat.format(d)}, fmtTime(unix));
}

// fmtDuration shows seconds as "1h 02m", "3m 05s" or "12s".
export function fmtDuration(secs) {
  if (secs == null || !Number.isFinite(secs)) return '—';
  secs = Math.max(0, Math.round(secs));
  const hh = Math.floor(secs / 3600);
  const mm = Math.floor((secs % 3600) / 60);
  const ss = secs % 60;
  if (hh > 0) return `${hh}h ${String(mm).padStart(2, '0')}m`;
  if (mm > 0) return `${mm}m ${String(ss).padStart(2, '0')}s`;
  return `${ss}s`;
}

// fmtETA shows when a running batch should end, relative to now.
export function fmtETA(eta) {
  if (eta == null) return '—';
  const left = eta - Date.now() / 1000;
  return left <= 1 ? 'any moment' : `in ${fmtDuration(left)}`;
}

// progressBar is a bar of a batch's lines: completed and failed segments over the
// total. It keeps its size whatever the counts, so nothing around it moves.
export function progressBar(label) {
  const ok = h('span', {class: 'bar-ok'});
  const bad = h('span', {class: 'bar-bad'});
  const el = h('div', {
    class: 'bar', role: 'progressbar', 'aria-label': label, 'aria-valuemin': '0', 'aria-valuemax': '100',
  }, ok, bad);
  el.update = (counts) => {
    const total = counts?.total ?? 0;
    const done = counts?.completed ?? 0;
    const failed = counts?.failed ?? 0;
    const pct = total > 0 ? ((done + failed) / total) * 100 : 0;
    ok.style.width = total > 0 ? `${(done / total) * 100}%` : '0';
    bad.style.width = total > 0 ? `${(failed / total) * 100}%` : '0';
    el.setAttribute('aria-valuenow', String(Math.round(pct)));
    el.setAttribute('aria-valuetext', total > 0
      ? `${fmtInt(done + failed)} of ${fmtInt(total)} lines done, ${fmtInt(failed)} failed`
      : 'not started');
  };
  return el;
}

// gauge is a meter of a quantity against a limit.
export function gauge(label) {
  const fill = h('span', {class: 'gauge-fill'});
  const el = h('div', {class: 'gauge', role: 'meter', 'aria-label': label, 'aria-valuemin': '0'}, fill);
  el.update = (value, max, text) => {
    const frac = max > 0 ? Math.min(1, value / max) : 0;
    fill.style.width = `${frac * 100}%`;
    el.dataset.level = frac >= 0.9 ? 'high' : frac >= 0.7 ? 'mid' : 'low';
    el.setAttribute('aria-valuemax', String(max > 0 ? max : 1));
    el.setAttribute('aria-valuenow', String(max > 0 ? Math.min(value, max) : 0));
    el.setAttribute('aria-valuetext', text);
  };
  return el;
}

// announce says something to screen readers and shows it briefly.
let toastTimer = 0;
export function announce(message, kind = 'info') {
  const el = document.getElementById('toast');
  if (!el) return;
  el.textContent = message;
  el.dataset.kind = kind;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 4000);
}

// confirmDialog asks a yes/no question in a modal dialog and resolves to the answer.
export function confirmDialog({title, text, ok, cancel = 'Keep it'}) {
  const dialog = document.getElementById('confirm-dialog');
  dialog.querySelector('#confirm-title').textContent = title;
  dialog.querySelector('#confirm-text').textContent = text;
  dialog.querySelector('#confirm-ok').textContent = ok;
  dialog.querySelector('#confirm-cancel').textContent = cancel;
  dialog.returnValue = '';
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), {once: true});
    dialog.showModal();
    dialog.querySelector('#confirm-cancel').focus();
  });
}

// errorText turns an error into a sentence for the page, with the API's code and
// param when it gave them.
export function errorText(err) {
  if (!err) return '';
  let text = err.message || String(err);
  const extra = [err.code && `code ${err.code}`, err.param && `param ${err.param}`].filter(Boolean);
  if (extra.length) text += ` (${extra.join(', ')})`;
  return text;
}

// showError fills an alert element with an error, or hides it for null.
export function showError(el, err) {
  el.hidden = !err;
  el.textContent = err ? errorText(err) : '';
}

// poller calls fn, then again delay(result) ms after it settles, until stopped. It
// waits longer while the page is hidden.
export function poller(fn, delay) {
  let timer = 0;
  let stopped = false;
  let running = false;
  let again = false;
  const run = async () => {
    running = true;
    let ms;
    try {
      ms = delay(await fn(), null);
    } catch (err) {
      ms = delay(undefined, err);
    }
    running = false;
    if (stopped || ms == null) return;
    if (again) {
      again = false;
      ms = 0;
    } else if (document.hidden) {
      ms = Math.max(ms, 5000);
    }
    timer = setTimeout(run, ms);
  };
  run();
  return {
    stop() { stopped = true; clearTimeout(timer); },
    // now polls at once, or right after the poll under way.
    now() {
      if (stopped) return;
      if (running) { again = true; return; }
      clearTimeout(timer);
      run();
    },
  };
}
