// The Batch jobs page: routing by the URL's hash (#/, #/batches/ID, #/files), so a
// reload keeps the view, and the API key dialog.
import * as api from './api.js';
import {announce} from './ui.js';
import {jobsView} from './jobs.js';
import {jobView} from './job.js';
import {filesView} from './files.js';

const main = document.getElementById('main');
let current = null;
let firstRender = true;

const routes = [
  {pattern: /^#\/batches\/([^/?#]+)$/, nav: 'jobs', view: (m) => jobView(decodeURIComponent(m[1]))},
  {pattern: /^#\/files$/, nav: 'files', view: () => filesView()},
  {pattern: /^(#\/?)?$/, nav: 'jobs', view: () => jobsView()},
];

function route() {
  const hash = location.hash;
  // Only "#/..." hashes are views; anything else (an in-page anchor) is left alone.
  if (hash !== '' && hash !== '#' && !hash.startsWith('#/')) return;
  const r = routes.find((r) => r.pattern.test(hash)) ?? routes[routes.length - 1];
  const view = r.view(hash.match(r.pattern) ?? []);
  current?.destroy?.();
  current = view;
  main.replaceChildren(view.el);
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === r.nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.title = `${view.title} · Sluice`;
  // Move focus to the new view's heading, as a page load would, except on the
  // first load, where the browser's own start is right.
  if (!firstRender) (main.querySelector('h1') ?? main).focus({preventScroll: false});
  firstRender = false;
}

// The API key dialog. It opens when a call answers 401, or from the header's button.
const dialog = document.getElementById('key-dialog');
const form = document.getElementById('key-form');
const input = document.getElementById('key-input');
const errorEl = document.getElementById('key-error');
const why = document.getElementById('key-why');
const keyState = document.getElementById('key-state');
let pending = null; // {resolve, reject} of the API calls waiting on a key

function updateKeyState() {
  keyState.textContent = api.getKey() ? 'Key set for this session' : 'No key';
  keyState.dataset.set = api.getKey() ? 'yes' : 'no';
}

function openKeyDialog(reason) {
  why.textContent = reason;
  errorEl.hidden = true;
  input.value = '';
  document.getElementById('key-forget').hidden = !api.getKey();
  if (!dialog.open) dialog.showModal();
  input.focus();
}

api.setKeyPrompt((err) => new Promise((resolve, reject) => {
  pending = {resolve, reject};
  const wrong = api.getKey() !== '';
  openKeyDialog(wrong
    ? 'The server did not accept the key. Enter another.'
    : 'This server needs an API key. It is kept in this tab only until the browser session ends.');
  if (wrong) {
    errorEl.textContent = err.message;
    errorEl.hidden = false;
  }
}));

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  const key = input.value.trim();
  if (!key) return;
  const submit = form.querySelector('button[type=submit]');
  submit.disabled = true;
  try {
    const err = await api.checkKey(key);
    if (err && err.status === 401) {
      errorEl.textContent = err.message;
      errorEl.hidden = false;
      input.select();
      return;
    }
  } catch {
    // the server is unreachable; take the key and let the calls say so
  } finally {
    submit.disabled = false;
  }
  api.setKey(key);
  updateKeyState();
  dialog.close('ok');
  announce('API key saved for this session.');
  if (pending) {
    pending.resolve();
    pending = null;
  } else {
    route(); // a changed key: show the view again with it
  }
});

dialog.addEventListener('close', () => {
  if (pending) {
    const err = new api.APIError(401, {error: {message: 'An API key is needed to use this server.'}});
    pending.reject(err);
    pending = null;
  }
});

document.getElementById('key-cancel').addEventListener('click', () => dialog.close('cancel'));
document.getElementById('key-forget').addEventListener('click', () => {
  api.forgetKey();
  updateKeyState();
  dialog.close('forget');
  announce('API key forgotten.');
  route();
});
document.getElementById('key-button').addEventListener('click', () => {
  openKeyDialog(api.getKey()
    ? 'A key is set for this session. Enter another to replace it, or forget it.'
    : 'Enter the API key for this server. It is kept in this tab only until the browser session ends.');
});

// askKey lets a view offer the dialog after the user declined it.
document.addEventListener('sluice:ask-key', () => document.getElementById('key-button').click());

updateKeyState();
window.addEventListener('hashchange', route);
route();
