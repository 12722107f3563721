// A job's page: status and timeline, live progress polled every second while the
// batch runs, a chart of its pace, the results so far, and its actions.
import * as api from './api.js';
import {rateChart} from './chart.js';
import {
  announce, confirmDialog, errorText, fmtDuration, fmtETA, fmtInt, fmtRate, h, isTerminal, poller,
  progressBar, setText, showError, statusPill, statusText, timeEl, updateStatusPill,
} from './ui.js';

const POLL_MS = 1000;
const RESULT_ROWS = 50;

// The timeline's stages, in the order a batch can reach them. The usual path is
// shown ahead of time; the others appear only when reached.
const STAGES = [
  {field: 'created_at', label: 'Created', usual: true},
  {field: 'in_progress_at', label: 'In progress', usual: true},
  {field: 'cancelling_at', label: 'Cancelling'},
  {field: 'finalizing_at', label: 'Finalizing', usual: true},
  {field: 'expired_at', label: 'Expired'},
  {field: 'failed_at', label: 'Failed'},
  {field: 'cancelled_at', label: 'Cancelled'},
  {field: 'completed_at', label: 'Completed', usual: true},
];

export function jobView(id) {
  const pill = statusPill('validating');
  const live = h('span', {class: 'visually-hidden', role: 'status', 'aria-live': 'polite'});
  const btnOutput = h('button', {type: 'button', id: 'download-output', hidden: true}, 'Download output');
  const btnErrors = h('button', {type: 'button', id: 'download-errors', hidden: true}, 'Download errors');
  const btnRetry = h('button', {type: 'button', id: 'retry-failed', hidden: true}, 'Retry failed lines');
  const btnRetryRest = h('button', {type: 'button', id: 'retry-unfinished', hidden: true}, 'Retry unfinished lines');
  const btnCancel = h('button', {type: 'button', id: 'cancel-batch', class: 'danger', hidden: true}, 'Cancel batch');
  const retryNote = h('p', {class: 'note', id: 'retry-note', hidden: true});
  const error = h('div', {class: 'error', role: 'alert', id: 'job-error', hidden: true});
  const conn = h('p', {class: 'note warn', hidden: true});

  // Progress.
  const bar = progressBar(`Progress of ${id}`);
  const stat = (label, key) => {
    const dd = h('dd', {class: 'num', dataset: {stat: key}}, '—');
    return [h('div', {class: 'stat'}, h('dt', {}, label), dd), dd];
  };
  const [sDoneEl, sDone] = stat('Completed', 'completed');
  const [sFailedEl, sFailed] = stat('Failed', 'failed');
  const [sTotalEl, sTotal] = stat('Total', 'total');
  const [sLeftEl, sLeft] = stat('Remaining', 'remaining');
  const [sRateEl, sRate] = stat('Lines/s', 'rate');
  const [sEtaEl, sEta] = stat('ETA', 'eta');
  const [sElapsedEl, sElapsed] = stat('Elapsed', 'elapsed');
  const pct = h('span', {class: 'num big-pct'}, '0%');
  const progress = h('section', {class: 'card progress-card', 'aria-labelledby': 'progress-h'},
    h('div', {class: 'card-head'}, h('h2', {id: 'progress-h'}, 'Progress'), pct),
    bar,
    h('dl', {class: 'stats'}, sDoneEl, sFailedEl, sTotalEl, sLeftEl, sRateEl, sEtaEl, sElapsedEl));

  // Timeline.
  const timeline = h('ol', {class: 'timeline'});
  const timelineCard = h('section', {class: 'card', 'aria-labelledby': 'timeline-h'},
    h('h2', {id: 'timeline-h'}, 'Timeline'), timeline);

  // Chart.
  const chart = rateChart();
  const chartCard = h('section', {class: 'card chart-card', 'aria-labelledby': 'chart-h'},
    h('div', {class: 'card-head'}, h('h2', {id: 'chart-h'}, 'Lines per second'), chart.legend), chart.el,
    h('p', {class: 'hint'}, 'Drawn from the progress seen while this page is open; the dashed line is the average since the batch started.'));

  // Details.
  const details = h('dl', {class: 'details'});
  const detailsCard = h('section', {class: 'card', 'aria-labelledby': 'details-h'},
    h('h2', {id: 'details-h'}, 'Details'), details);

  // Validation errors.
  const errorsBody = h('tbody');
  const errorsCard = h('section', {class: 'card errors-card', 'aria-labelledby': 'errors-h', hidden: true},
    h('h2', {id: 'errors-h'}, 'Problems found in the input'),
    h('div', {class: 'table-wrap'}, h('table', {class: 'errors-table'},
      h('thead', {}, h('tr', {}, h('th', {scope: 'col', class: 'n'}, 'Line'), h('th', {scope: 'col'}, 'Code'),
        h('th', {scope: 'col'}, 'Message'), h('th', {scope: 'col'}, 'Param'))),
      errorsBody)));

  // Results so far.
  const resultsBody = h('tbody');
  const resultsCount = h('span', {class: 'muted num'});
  const resultsEmpty = h('p', {class: 'empty'}, 'No results yet.');
  const resultsTable = h('table', {class: 'results-table', hidden: true},
    h('caption', {class: 'visually-hidden'}, 'The latest result lines, newest first'),
    h('thead', {}, h('tr', {}, h('th', {scope: 'col'}, 'custom_id'), h('th', {scope: 'col'}, 'Status'),
      h('th', {scope: 'col'}, 'Answer or error'))),
    resultsBody);
  const showAll = h('input', {type: 'radio', name: 'results-type', value: 'all', checked: true});
  const showErrors = h('input', {type: 'radio', name: 'results-type', value: 'error'});
  const filter = h('fieldset', {class: 'segmented'},
    h('legend', {class: 'visually-hidden'}, 'Which results to show'),
    h('label', {}, showAll, 'All lines'),
    h('label', {}, showErrors, 'Failures only'));
  const resultsCard = h('section', {class: 'card results-card', 'aria-labelledby': 'results-h'},
    h('div', {class: 'card-head'}, h('h2', {id: 'results-h'}, 'Results so far'), resultsCount, filter),
    resultsEmpty, h('div', {class: 'table-wrap results-wrap', tabindex: '0', 'aria-label': 'Results so far'}, resultsTable));

  const title = h('h1', {tabindex: '-1', class: 'job-title'}, h('span', {class: 'mono'}, id));
  const el = h('div', {class: 'view job-view', dataset: {batchId: id}},
    h('nav', {class: 'crumbs', 'aria-label': 'Breadcrumb'}, h('a', {href: '#/'}, 'Batch jobs'), h('span', {'aria-hidden': 'true'}, ' / '),
      h('span', {'aria-current': 'page', class: 'mono'}, id)),
    h('header', {class: 'job-head'},
      h('div', {class: 'job-title-row'}, title, pill, live),
      h('div', {class: 'actions', role: 'group', 'aria-label': 'Batch actions'}, btnOutput, btnErrors, btnRetry, btnRetryRest, btnCancel)),
    retryNote, error, conn,
    h('div', {class: 'job-grid'}, progress, timelineCard, chartCard, detailsCard, errorsCard, resultsCard));

  let batch = null;
  let cursor = '';
  let resultsType = 'all';
  let resultsGen = 0; // bumped when the filter changes, to drop answers to the old one
  let resultsSeen = 0;
  const latest = []; // the newest RESULT_ROWS result lines, oldest first
  let lastStatus = null;
  let inputName = null;
  const controller = new AbortController();

  function renderStats(b) {
    const c = b.request_counts;
    bar.update(c);
    const done = c.completed + c.failed;
    setText(pct, c.total > 0 ? `${Math.floor((done / c.total) * 100)}%` : '0%');
    setText(sDone, fmtInt(c.completed));
    setText(sFailed, fmtInt(c.failed));
    sFailed.classList.toggle('bad-text', c.failed > 0);
    setText(sTotal, c.total > 0 || b.status !== 'validating' ? fmtInt(c.total) : '—');
    setText(sLeft, c.total > 0 ? fmtInt(Math.max(0, c.total - done)) : '—');
    setText(sRate, fmtRate(b.lines_per_second ?? averageRate(b)));
    setText(sEta, b.status === 'in_progress' ? fmtETA(b.eta) : '—');
    const start = b.in_progress_at;
    const end = endTime(b) ?? Date.now() / 1000;
    setText(sElapsed, start ? fmtDuration(end - start) : '—');
  }

  function renderTimeline(b) {
    const items = [];
    for (const s of STAGES) {
      const t = b[s.field];
      if (t == null && (!s.usual || isTerminal(b.status))) continue;
      if (t == null && b.cancelling_at != null) continue;
      const since = t != null && s.field !== 'created_at' ? `+${fmtDuration(t - b.created_at)}` : '';
      items.push(h('li', {class: t != null ? 'reached' : 'ahead', dataset: {stage: s.field}},
        h('span', {class: 'tl-dot', 'aria-hidden': 'true'}),
        h('span', {class: 'tl-label'}, s.label),
        t != null ? timeEl(t) : h('span', {class: 'muted'}, 'not yet'),
        h('span', {class: 'muted num tl-since'}, since)));
    }
    const key = items.map((li) => li.dataset.stage + li.className).join();
    if (timeline.dataset.key !== key) {
      timeline.dataset.key = key;
      timeline.replaceChildren(...items);
    }
  }

  function renderDetails(b) {
    const rows = [
      ['Endpoint', h('code', {}, b.endpoint)],
      ['Model', b.model ?? '—'],
      ['Input file', b.input_file_id
        ? [inputName ? `${inputName} ` : '', h('span', {class: 'mono muted'}, b.input_file_id)]
        : (b.input_blob ?? '—')],
      ['Completion window', b.completion_window],
      ['Expires', timeEl(b.expires_at)],
    ];
    if (b.output_file_id) rows.push(['Output file', h('span', {class: 'mono'}, b.output_file_id)]);
    if (b.error_file_id) rows.push(['Error file', h('span', {class: 'mono'}, b.error_file_id)]);
    const u = b.usage;
    if (u && (u.total_tokens > 0 || u.input_tokens > 0)) {
      let text = `${fmtInt(u.input_tokens)} in · ${fmtInt(u.output_tokens)} out · ${fmtInt(u.total_tokens)} total`;
      if (u.input_tokens_details?.cached_tokens) text += ` · ${fmtInt(u.input_tokens_details.cached_tokens)} cached`;
      if (u.estimated_lines) text += ` (${fmtInt(u.estimated_lines)} lines estimated)`;
      rows.push(['Usage (tokens)', h('span', {class: 'num'}, text)]);
    }
    if (b.cost) {
      const money = new Intl.NumberFormat(undefined, {style: 'currency', currency: b.cost.currency || 'USD', maximumFractionDigits: 6});
      const disc = b.cost.discount ? ` after a ${Math.round(b.cost.discount * 100)}% batch discount` : '';
      rows.push(['Cost', h('span', {class: 'num'}, `${money.format(b.cost.amount)}${disc}`)]);
    }
    if (b.enqueued_tokens) rows.push(['Quota held', h('span', {class: 'num'}, `${fmtInt(b.enqueued_tokens)} tokens`)]);
    for (const [k, v] of Object.entries(b.metadata ?? {})) {
      const value = k === 'retry_of' ? h('a', {href: `#/batches/${encodeURIComponent(v)}`, class: 'mono'}, v) : v;
      rows.push([k === 'retry_of' ? 'Retry of' : `metadata.${k}`, value]);
    }
    const key = JSON.stringify([b.endpoint, b.model, b.input_file_id, inputName, b.expires_at, b.output_file_id,
      b.error_file_id, b.usage, b.cost, b.enqueued_tokens, b.metadata]);
    if (details.dataset.key !== key) {
      details.dataset.key = key;
      details.replaceChildren(...rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
    }
  }

  function renderErrors(b) {
    const data = b.errors?.data ?? [];
    errorsCard.hidden = data.length === 0;
    if (errorsBody.children.length === data.length) return;
    errorsBody.replaceChildren(...data.map((e) => h('tr', {},
      h('td', {class: 'n num'}, e.line ?? '—'), h('td', {}, h('code', {}, e.code)),
      h('td', {}, e.message), h('td', {}, e.param ? h('code', {}, e.param) : '—'))));
  }

  function renderActions(b) {
    const c = b.request_counts;
    btnOutput.hidden = !b.output_file_id;
    btnErrors.hidden = !b.error_file_id;
    setText(btnOutput, `Download output (${fmtInt(c.completed)})`);
    setText(btnErrors, `Download errors (${fmtInt(c.failed)})`);
    btnRetry.hidden = !(isTerminal(b.status) && c.failed > 0 && b.input_file_id);
    const unfinished = c.total - c.completed - c.failed;
    btnRetryRest.hidden = !(isTerminal(b.status) && unfinished > 0 && b.input_file_id);
    btnCancel.hidden = !(b.status === 'validating' || b.status === 'in_progress');
  }

  function resultRow(line) {
    const status = line.response?.status_code;
    const ok = status >= 200 && status < 300 && !line.error;
    const body = line.response?.body;
    let text;
    if (ok) {
      text = body?.choices?.[0]?.message?.content ?? body?.choices?.[0]?.text ?? body?.output_text
        ?? body?.output?.find?.((o) => o.type === 'message')?.content?.[0]?.text
        ?? (body?.data?.[0]?.embedding ? `embedding of ${body.data[0].embedding.length} numbers` : null)
        ?? JSON.stringify(body ?? null).slice(0, 200);
    } else {
      text = line.error?.message ?? body?.error?.message ?? JSON.stringify(body ?? line.error ?? null).slice(0, 200);
    }
    const code = line.error?.code ?? (status != null ? String(status) : '—');
    return h('tr', {class: ok ? 'ok' : 'bad', dataset: {customId: line.custom_id ?? ''}},
      h('td', {class: 'mono'}, line.custom_id ?? '—'),
      h('td', {}, h('span', {class: `code-badge ${ok ? 'ok' : 'bad'}`}, code)),
      h('td', {class: 'answer'}, text ?? ''));
  }

  async function pollResults() {
    const gen = resultsGen;
    const ring = []; // only the newest lines are kept, however many stream in
    let added = 0;
    const next = await api.results(id, cursor, (line) => {
      added++;
      ring.push(line);
      if (ring.length > RESULT_ROWS) ring.shift();
    }, {signal: controller.signal, type: resultsType});
    if (gen !== resultsGen) return; // the filter changed meanwhile; the next poll reads afresh
    cursor = next;
    latest.push(...ring);
    latest.splice(0, Math.max(0, latest.length - RESULT_ROWS));
    resultsSeen += added;
    if (added > 0) {
      resultsBody.replaceChildren(...latest.slice().reverse().map(resultRow));
    }
    if (added === 0 && resultsSeen === 0) resultsBody.replaceChildren();
    resultsTable.hidden = resultsSeen === 0;
    resultsEmpty.hidden = resultsSeen > 0;
    setText(resultsEmpty, resultsType === 'error' ? 'No failed lines so far.' : 'No results yet.');
    setText(resultsCount, resultsSeen > RESULT_ROWS
      ? `latest ${RESULT_ROWS} of ${fmtInt(resultsSeen)} lines`
      : `${fmtInt(resultsSeen)} lines`);
  }

  async function tick() {
    const b = await api.get(`/batches/${encodeURIComponent(id)}`, {signal: controller.signal});
    batch = b;
    if (inputName === null && b.input_file_id) {
      inputName = '';
      api.fileName(b.input_file_id).then((n) => { inputName = n ?? ''; if (batch) renderDetails(batch); });
    }
    updateStatusPill(pill, b.status);
    el.dataset.status = b.status;
    if (lastStatus !== null && lastStatus !== b.status) live.textContent = `Status: ${statusText(b.status)}`;
    lastStatus = b.status;
    renderStats(b);
    renderTimeline(b);
    renderDetails(b);
    renderErrors(b);
    renderActions(b);
    chart.add(b);
    await pollResults();
    conn.hidden = true;
    return b;
  }

  const p = poller(tick, (b, err) => {
    if (err) {
      if (err.name === 'AbortError') return null;
      if (err.status === 404) {
        showError(error, err);
        return null;
      }
      if (err.status === 401) {
        showError(error, new Error('An API key is needed to see this batch. Use the API key button above.'));
        return null;
      }
      conn.hidden = false;
      conn.textContent = `Could not refresh: ${errorText(err)} Trying again…`;
      return 3000;
    }
    return isTerminal(b.status) ? null : POLL_MS;
  });

  async function saveFile(fileID, fallback, button) {
    button.disabled = true;
    try {
      const name = (await api.fileName(fileID)) ?? fallback;
      const size = await api.download(fileID, name);
      announce(`Saved ${name} (${fmtInt(size)} bytes).`);
    } catch (err) {
      showError(error, err);
    } finally {
      button.disabled = false;
    }
  }
  btnOutput.addEventListener('click', () => saveFile(batch.output_file_id, `${id}_output.jsonl`, btnOutput));
  btnErrors.addEventListener('click', () => saveFile(batch.error_file_id, `${id}_error.jsonl`, btnErrors));

  btnCancel.addEventListener('click', async () => {
    const yes = await confirmDialog({
      title: 'Cancel this batch?',
      text: `Lines not yet sent will not run. Lines already finished stay in the output and error files. ${id}`,
      ok: 'Cancel batch',
      cancel: 'Keep running',
    });
    if (!yes) return;
    btnCancel.disabled = true;
    try {
      await api.post(`/batches/${encodeURIComponent(id)}/cancel`);
      announce('Cancelling the batch…');
      showError(error, null);
    } catch (err) {
      showError(error, err);
    } finally {
      btnCancel.disabled = false;
      p.now();
    }
  });

  async function retry(lines, button) {
    button.disabled = true;
    try {
      const nb = await api.post(`/batches/${encodeURIComponent(id)}/retry`, {lines});
      retryNote.replaceChildren('Retry batch created: ',
        h('a', {href: `#/batches/${encodeURIComponent(nb.id)}`, class: 'mono', id: 'retry-link'}, nb.id),
        ` (${lines} lines).`);
      retryNote.hidden = false;
      showError(error, null);
      announce(`Retry batch ${nb.id} created.`);
      retryNote.querySelector('a').focus();
    } catch (err) {
      showError(error, err);
    } finally {
      button.disabled = false;
    }
  }
  for (const radio of [showAll, showErrors]) {
    radio.addEventListener('change', () => {
      if (!radio.checked) return;
      resultsType = radio.value;
      resultsGen++;
      cursor = '';
      latest.length = 0;
      resultsSeen = 0;
      p.now();
    });
  }

  btnRetry.addEventListener('click', () => retry('failed', btnRetry));
  btnRetryRest.addEventListener('click', () => retry('unfinished', btnRetryRest));

  return {
    el,
    title: `Batch ${id}`,
    destroy() {
      p.stop();
      controller.abort();
      chart.destroy();
    },
  };
}

function endTime(b) {
  return b.completed_at ?? b.failed_at ?? b.cancelled_at ?? b.expired_at ?? null;
}

// averageRate is a batch's lines per second from start to end, once it has ended.
function averageRate(b) {
  const start = b.in_progress_at;
  const end = endTime(b) ?? b.finalizing_at;
  const done = b.request_counts.completed + b.request_counts.failed;
  if (!start || !end || done === 0) return null;
  return done / Math.max(1, end - start);
}
