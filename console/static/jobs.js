// The jobs page: create a job from a .jsonl file, each deployment's quota, and the
// list of batch jobs, newest first, refreshed while any of them runs.
import * as api from './api.js';
import {
  announce, errorText, fmtBytes, fmtCompact, fmtDuration, fmtETA, fmtInt, fmtRate, gauge, h, isTerminal, poller,
  progressBar, setText, showError, statusPill, timeEl, updateStatusPill,
} from './ui.js';

const PAGE_SIZE = 20;

export function jobsView() {
  const create = createPanel();
  const quota = quotaPanel();
  const list = jobsList();
  const el = h('div', {class: 'view jobs-view'},
    h('h1', {class: 'visually-hidden', tabindex: '-1'}, 'Batch jobs'),
    h('div', {class: 'top-grid'}, create.el, quota.el),
    list.el);
  create.onCreated = () => list.refresh();
  const p = poller(async () => {
    const [running] = await Promise.all([list.load(), quota.load()]);
    return running;
  }, (running, err) => {
    list.showError(err);
    if (err?.status === 401) return null; // the key dialog was declined; its button starts again
    return running || err ? 2000 : 10000;
  });
  list.refresh = () => p.now();
  return {el, title: 'Batch jobs', destroy() { p.stop(); create.destroy(); }};
}

// firstLineURL reads a file's first line and returns its "url", the batch's endpoint.
async function firstLineURL(file) {
  let text = '';
  const step = 64 * 1024;
  for (let off = 0; off < file.size; off += step) {
    text += await file.slice(off, off + step).text();
    const nl = text.indexOf('\n');
    if (nl >= 0) {
      text = text.slice(0, nl);
      break;
    }
    if (text.length > 16 * 1024 * 1024) break;
  }
  text = text.replace(/^\uFEFF/, '').trim();
  if (!text) throw new Error('The file is empty: it needs one JSON request per line.');
  let line;
  try {
    line = JSON.parse(text);
  } catch {
    throw new Error('The first line is not JSON. A batch file has one JSON request per line.');
  }
  if (typeof line?.url !== 'string' || !line.url) {
    throw new Error('The first line has no "url"; it names the endpoint, such as "/v1/chat/completions".');
  }
  return line.url;
}

function createPanel() {
  const input = h('input', {
    type: 'file', id: 'file-input', class: 'visually-hidden', accept: '.jsonl,application/jsonl,application/x-ndjson',
    'aria-describedby': 'drop-hint',
  });
  const zone = h('div', {class: 'dropzone', id: 'dropzone'},
    input,
    h('label', {for: 'file-input', class: 'drop-label'},
      h('span', {class: 'drop-icon', 'aria-hidden': 'true'}, '⇪'),
      h('span', {}, 'Drop a ', h('code', {}, '.jsonl'), ' file here, or ', h('span', {class: 'linkish'}, 'choose a file'))),
    h('p', {class: 'hint', id: 'drop-hint'},
      'One request per line. The first line’s url sets the endpoint; the completion window is 24h.'));
  const name = h('span', {class: 'upload-name'});
  const size = h('span', {class: 'upload-size num'});
  const stage = h('span', {class: 'upload-stage num', id: 'upload-stage'});
  const fill = h('span', {class: 'bar-ok'});
  const bar = h('div', {
    class: 'bar', role: 'progressbar', 'aria-label': 'Upload progress', 'aria-valuemin': '0', 'aria-valuemax': '100',
    'aria-valuenow': '0',
  }, fill);
  const abort = h('button', {type: 'button', class: 'small'}, 'Cancel upload');
  const status = h('div', {class: 'upload', hidden: true},
    h('div', {class: 'upload-row'}, name, size), bar, h('div', {class: 'upload-row'}, stage, abort));
  const error = h('div', {class: 'error', role: 'alert', id: 'create-error', hidden: true});
  const el = h('section', {class: 'card create', 'aria-labelledby': 'create-h'},
    h('h2', {id: 'create-h'}, 'New batch job'), zone, status, error);

  let controller = null;
  const self = {el, onCreated: null, destroy() { controller?.abort(); }};

  const setProgress = (pct, text) => {
    fill.style.width = `${pct}%`;
    bar.setAttribute('aria-valuenow', String(Math.round(pct)));
    setText(stage, text);
  };

  async function start(file) {
    if (controller) return; // one upload at a time
    showError(error, null);
    if (!file) return;
    if (!/\.jsonl$/i.test(file.name)) {
      showError(error, new Error(`${file.name} is not a .jsonl file.`));
      return;
    }
    let endpoint;
    try {
      endpoint = await firstLineURL(file);
    } catch (err) {
      showError(error, err);
      return;
    }
    controller = new AbortController();
    zone.classList.add('busy');
    input.disabled = true;
    status.hidden = false;
    name.textContent = file.name;
    size.textContent = fmtBytes(file.size);
    setProgress(0, 'Uploading… 0%');
    status.classList.remove('failed');
    abort.hidden = false;
    let uploaded = null;
    try {
      const f = await api.upload(file, {
        signal: controller.signal,
        onProgress: (loaded, total) => {
          const pct = total > 0 ? (loaded / total) * 100 : 0;
          setProgress(pct, pct >= 100 ? 'Checking the file…' : `Uploading… ${Math.floor(pct)}%`);
        },
      });
      uploaded = f;
      abort.hidden = true;
      setProgress(100, 'Creating the batch…');
      const batch = await api.post('/batches', {input_file_id: f.id, endpoint, completion_window: '24h'});
      setText(stage, 'Batch created.');
      announce(`Batch ${batch.id} created from ${file.name}.`);
      self.onCreated?.();
      location.hash = `#/batches/${encodeURIComponent(batch.id)}`;
    } catch (err) {
      if (err.name === 'AbortError') {
        setText(stage, 'Upload cancelled.');
      } else {
        status.classList.add('failed');
        setText(stage, uploaded
          ? `Uploaded as ${uploaded.id}, but the batch was not created:`
          : 'The upload failed:');
        showError(error, err);
      }
    } finally {
      controller = null;
      zone.classList.remove('busy');
      input.disabled = false;
      input.value = '';
      abort.hidden = true;
    }
  }

  input.addEventListener('change', () => start(input.files[0]));
  abort.addEventListener('click', () => controller?.abort());
  zone.addEventListener('dragover', (e) => {
    e.preventDefault();
    e.dataTransfer.dropEffect = controller ? 'none' : 'copy';
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', (e) => {
    if (!zone.contains(e.relatedTarget)) zone.classList.remove('over');
  });
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    const files = e.dataTransfer?.files;
    if (files?.length > 1) {
      showError(error, new Error('Drop one file at a time.'));
      return;
    }
    start(files?.[0]);
  });
  return self;
}

function quotaPanel() {
  const list = h('ul', {class: 'quota-list'});
  const error = h('div', {class: 'error', role: 'alert', hidden: true});
  const el = h('section', {class: 'card quota', 'aria-labelledby': 'quota-h'},
    h('h2', {id: 'quota-h'}, 'Enqueued-token quota'), list, error);
  const rows = new Map();

  function row(d) {
    let r = rows.get(d.id);
    if (!r) {
      const g = gauge(`Tokens enqueued on ${d.id}`);
      const used = h('span', {class: 'num'});
      const avail = h('span', {class: 'num muted'});
      const model = h('span', {class: 'muted'});
      r = {g, used, avail, model, li: h('li', {class: 'quota-item', dataset: {deployment: d.id}},
        h('div', {class: 'quota-head'}, h('strong', {}, d.id), model),
        g,
        h('div', {class: 'quota-nums'}, used, avail))};
      rows.set(d.id, r);
    }
    const q = d.quota;
    const max = q.maximum_enqueued_tokens;
    setText(r.model, d.model && d.model !== d.id ? d.model : '');
    if (max != null) {
      r.g.update(q.enqueued_tokens, max, `${fmtInt(q.enqueued_tokens)} of ${fmtInt(max)} tokens enqueued`);
      setText(r.used, `${fmtCompact(q.enqueued_tokens)} of ${fmtCompact(max)} tokens`);
      const dyn = q.dynamic_quota ? (q.idle ? ' · dynamic quota lending' : ' · dynamic quota') : '';
      setText(r.avail, `${fmtCompact(q.available_tokens)} free${dyn}`);
    } else {
      r.g.update(0, 0, `${fmtInt(q.enqueued_tokens)} tokens enqueued, no limit`);
      setText(r.used, `${fmtCompact(q.enqueued_tokens)} tokens`);
      setText(r.avail, 'no limit');
    }
    return r.li;
  }

  return {
    el,
    async load() {
      try {
        const res = await api.get('/deployments');
        const items = res.data.map(row);
        if (items.length === 0) items.push(h('li', {class: 'muted'}, 'No deployments are configured.'));
        if (items.length !== list.children.length || items.some((li, i) => list.children[i] !== li)) {
          list.replaceChildren(...items);
        }
        showError(error, null);
      } catch (err) {
        showError(error, err);
      }
    },
  };
}

function jobsList() {
  const tbody = h('tbody');
  const empty = h('p', {class: 'empty', hidden: true}, 'No batch jobs yet. Upload a .jsonl file above to start one.');
  const error = h('div', {class: 'error', role: 'alert', hidden: true});
  const newer = h('button', {type: 'button', disabled: true}, '← Newer');
  const older = h('button', {type: 'button', disabled: true}, 'Older →');
  const pageLabel = h('span', {class: 'num muted', 'aria-live': 'polite'}, 'Page 1');
  const updated = h('span', {class: 'muted num updated'});
  const refresh = h('button', {type: 'button', class: 'small'}, 'Refresh');
  const table = h('table', {class: 'jobs-table'},
    h('caption', {class: 'visually-hidden'}, 'Batch jobs, newest first'),
    h('colgroup', {},
      h('col', {class: 'c-status'}), h('col', {class: 'c-id'}), h('col', {class: 'c-model'}),
      h('col', {class: 'c-progress'}), h('col', {class: 'c-n'}), h('col', {class: 'c-n'}), h('col', {class: 'c-n'}),
      h('col', {class: 'c-time'}), h('col', {class: 'c-eta'})),
    h('thead', {}, h('tr', {},
      h('th', {scope: 'col'}, 'Status'), h('th', {scope: 'col'}, 'Batch'), h('th', {scope: 'col'}, 'Model'),
      h('th', {scope: 'col'}, 'Progress'), h('th', {scope: 'col', class: 'n'}, 'Done'),
      h('th', {scope: 'col', class: 'n'}, 'Failed'), h('th', {scope: 'col', class: 'n'}, 'Total'),
      h('th', {scope: 'col'}, 'Created'), h('th', {scope: 'col'}, 'ETA'))),
    tbody);
  const el = h('section', {class: 'card jobs', 'aria-labelledby': 'jobs-h'},
    h('div', {class: 'card-head'}, h('h2', {id: 'jobs-h'}, 'Batch jobs'), updated, refresh),
    h('div', {class: 'table-wrap'}, table),
    empty, error,
    h('nav', {class: 'pager', 'aria-label': 'Pages of batch jobs'}, newer, pageLabel, older));

  const rows = new Map();
  const cursors = ['']; // the "after" of each page seen; the last is this page's
  let lastID = null;
  const self = {el, refresh() {}};

  function rowFor(b) {
    let r = rows.get(b.id);
    if (!r) {
      const cell = (label, cls, ...kids) => h('td', {'data-label': label, class: cls}, ...kids);
      r = {
        pill: statusPill(b.status),
        name: h('span', {class: 'muted small-text file-name'}),
        model: h('span'),
        bar: progressBar(`Progress of ${b.id}`),
        pct: h('span', {class: 'num pct'}),
        done: h('span', {class: 'num'}),
        failed: h('span', {class: 'num'}),
        total: h('span', {class: 'num'}),
        eta: h('span', {class: 'num'}),
        rate: h('span', {class: 'num muted small-text'}),
      };
      r.tr = h('tr', {dataset: {batchId: b.id}},
        cell('Status', 'status', r.pill),
        cell('Batch', 'id', h('a', {href: `#/batches/${encodeURIComponent(b.id)}`, class: 'mono', title: b.id}, b.id), r.name),
        cell('Model', '', r.model),
        cell('Progress', 'progress', h('div', {class: 'progress-cell'}, r.bar, r.pct)),
        cell('Done', 'n', r.done), cell('Failed', 'n', r.failed), cell('Total', 'n', r.total),
        cell('Created', 'time', timeEl(b.created_at)),
        cell('ETA', 'eta', r.eta, r.rate));
      rows.set(b.id, r);
      const retryOf = b.metadata?.retry_of;
      api.fileName(b.input_file_id).then((n) => {
        if (n) r.name.textContent = retryOf ? `retry of ${retryOf.slice(0, 14)}…` : n;
      });
    }
    const c = b.request_counts;
    updateStatusPill(r.pill, b.status);
    r.tr.dataset.status = b.status;
    setText(r.model, b.model ?? '—');
    r.bar.update(c);
    setText(r.pct, c.total > 0 ? `${Math.floor(((c.completed + c.failed) / c.total) * 100)}%` : '');
    setText(r.done, fmtInt(c.completed));
    setText(r.failed, fmtInt(c.failed));
    r.failed.classList.toggle('bad-text', c.failed > 0);
    setText(r.total, fmtInt(c.total));
    const end = b.completed_at ?? b.failed_at ?? b.cancelled_at ?? b.expired_at;
    if (b.status === 'in_progress') setText(r.eta, fmtETA(b.eta));
    else if (end && b.in_progress_at) {
      const took = end - b.in_progress_at;
      setText(r.eta, took < 1 ? 'took under 1s' : `took ${fmtDuration(took)}`);
    }
    else setText(r.eta, '—');
    r.eta.classList.toggle('muted', b.status !== 'in_progress');
    setText(r.rate, b.lines_per_second != null ? `${fmtRate(b.lines_per_second)} lines/s` : '');
    return r.tr;
  }

  async function load() {
    const after = cursors[cursors.length - 1];
    const q = new URLSearchParams({limit: String(PAGE_SIZE)});
    if (after) q.set('after', after);
    const res = await api.get(`/batches?${q}`);
    const trs = res.data.map(rowFor);
    const same = trs.length === tbody.children.length && trs.every((tr, i) => tbody.children[i] === tr);
    if (!same) tbody.replaceChildren(...trs);
    const seen = new Set(res.data.map((b) => b.id));
    for (const id of rows.keys()) if (!seen.has(id)) rows.delete(id);
    empty.hidden = res.data.length > 0 || cursors.length > 1;
    table.hidden = res.data.length === 0;
    lastID = res.last_id;
    older.disabled = !res.has_more;
    newer.disabled = cursors.length === 1;
    setText(pageLabel, `Page ${cursors.length}`);
    setText(updated, `Updated ${new Date().toLocaleTimeString()}`);
    return res.data.some((b) => !isTerminal(b.status));
  }

  older.addEventListener('click', () => {
    if (!lastID) return;
    cursors.push(lastID);
    self.refresh();
  });
  newer.addEventListener('click', () => {
    if (cursors.length > 1) cursors.pop();
    self.refresh();
  });
  refresh.addEventListener('click', () => self.refresh());

  self.load = load;
  self.showError = (err) => {
    if (err?.status === 401) {
      showError(error, new Error('An API key is needed to list the batch jobs. Use the API key button above.'));
    } else {
      showError(error, err ? new Error(`Could not load the batch jobs: ${errorText(err)}`) : null);
    }
  };
  return self;
}
