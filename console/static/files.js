// The files page: every file, newest first, with download and delete.
import * as api from './api.js';
import {announce, confirmDialog, errorText, fmtBytes, h, setText, showError, timeEl} from './ui.js';

const PAGE_SIZE = 50;

const PURPOSE_TEXT = {batch: 'Batch input', batch_output: 'Batch result'};

export function filesView() {
  const tbody = h('tbody');
  const error = h('div', {class: 'error', role: 'alert', id: 'files-error', hidden: true});
  const empty = h('p', {class: 'empty', hidden: true}, 'No files.');
  const newer = h('button', {type: 'button', disabled: true}, '← Newer');
  const older = h('button', {type: 'button', disabled: true}, 'Older →');
  const pageLabel = h('span', {class: 'num muted', 'aria-live': 'polite'}, 'Page 1');
  const refresh = h('button', {type: 'button', class: 'small'}, 'Refresh');
  const table = h('table', {class: 'files-table'},
    h('caption', {class: 'visually-hidden'}, 'Files, newest first'),
    h('thead', {}, h('tr', {},
      h('th', {scope: 'col'}, 'Name'), h('th', {scope: 'col'}, 'File'), h('th', {scope: 'col'}, 'Purpose'),
      h('th', {scope: 'col', class: 'n'}, 'Size'), h('th', {scope: 'col'}, 'Created'), h('th', {scope: 'col'}, 'Expires'),
      h('th', {scope: 'col'}, 'Status'), h('th', {scope: 'col'}, h('span', {class: 'visually-hidden'}, 'Actions')))),
    tbody);
  const el = h('div', {class: 'view files-view'},
    h('section', {class: 'card', 'aria-labelledby': 'files-h'},
      h('div', {class: 'card-head'}, h('h1', {id: 'files-h', tabindex: '-1'}, 'Files'), refresh),
      error,
      h('div', {class: 'table-wrap'}, table),
      empty,
      h('nav', {class: 'pager', 'aria-label': 'Pages of files'}, newer, pageLabel, older)));

  const cursors = [''];
  let lastID = null;
  const controller = new AbortController();

  async function load() {
    const q = new URLSearchParams({limit: String(PAGE_SIZE)});
    const after = cursors[cursors.length - 1];
    if (after) q.set('after', after);
    try {
      const res = await api.get(`/files?${q}`, {signal: controller.signal});
      tbody.replaceChildren(...res.data.map(row));
      table.hidden = res.data.length === 0;
      empty.hidden = res.data.length > 0;
      lastID = res.last_id;
      older.disabled = !res.has_more;
      newer.disabled = cursors.length === 1;
      setText(pageLabel, `Page ${cursors.length}`);
      showError(error, null);
    } catch (err) {
      if (err.name === 'AbortError') return;
      showError(error, new Error(`Could not load the files: ${errorText(err)}`));
    }
  }

  function row(f) {
    const dl = h('button', {type: 'button', class: 'small', 'aria-label': `Download ${f.filename}`}, 'Download');
    const rm = h('button', {type: 'button', class: 'small danger', 'aria-label': `Delete ${f.filename}`}, 'Delete');
    dl.addEventListener('click', async () => {
      dl.disabled = true;
      try {
        await api.download(f.id, f.filename);
        announce(`Saved ${f.filename}.`);
      } catch (err) {
        showError(error, err);
      } finally {
        dl.disabled = false;
      }
    });
    rm.addEventListener('click', async () => {
      const yes = await confirmDialog({
        title: 'Delete this file?',
        text: `${f.filename} (${f.id}) will be deleted for good.`,
        ok: 'Delete file',
      });
      if (!yes) return;
      try {
        await api.del(`/files/${encodeURIComponent(f.id)}`);
        announce(`Deleted ${f.filename}.`);
        await load();
        tbody.querySelector('button') ? tbody.querySelector('button').focus() : refresh.focus();
      } catch (err) {
        showError(error, err);
      }
    });
    return h('tr', {dataset: {fileId: f.id}},
      h('td', {'data-label': 'Name', class: 'name'}, f.filename),
      h('td', {'data-label': 'File', class: 'mono id'}, f.id),
      h('td', {'data-label': 'Purpose'}, PURPOSE_TEXT[f.purpose] ?? f.purpose),
      h('td', {'data-label': 'Size', class: 'n num'}, fmtBytes(f.bytes)),
      h('td', {'data-label': 'Created', class: 'time'}, timeEl(f.created_at)),
      h('td', {'data-label': 'Expires', class: 'time'}, f.expires_at ? timeEl(f.expires_at) : h('span', {class: 'muted'}, 'never')),
      h('td', {'data-label': 'Status'}, f.status, f.status_details ? h('span', {class: 'muted small-text'}, ` ${f.status_details}`) : null),
      h('td', {class: 'row-actions'}, dl, rm));
  }

  older.addEventListener('click', () => { if (lastID) { cursors.push(lastID); load(); } });
  newer.addEventListener('click', () => { if (cursors.length > 1) { cursors.pop(); load(); } });
  refresh.addEventListener('click', load);
  load();
  return {el, title: 'Files', destroy() { controller.abort(); }};
}
