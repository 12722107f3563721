// The page's only way to the server: the public /v1 API, with the API key the user
// typed sent as "Authorization: Bearer KEY". The key lives in sessionStorage for this
// browser session, never in a URL. A server with no keys needs none: every call is
// tried as it is, and a 401 asks for a key and tries again.

const KEY_STORAGE = 'sluice.apiKey';
let declined = false; // the user closed the key question; ask again only once a key is set

// APIError is an error answer of the API: {error: {message, type, param, code}}.
export class APIError extends Error {
  constructor(status, body) {
    const e = body?.error ?? {};
    super(e.message || `The server answered ${status}.`);
    this.name = 'APIError';
    this.status = status;
    this.type = e.type ?? null;
    this.code = e.code ?? null;
    this.param = e.param ?? null;
  }
}

// apiURL resolves an API path against the page's own location, so the page works
// behind a proxy that serves Sluice under a prefix.
export const apiURL = (path) => new URL(`../v1${path}`, location.href).toString();

export const getKey = () => sessionStorage.getItem(KEY_STORAGE) ?? '';
export const setKey = (key) => {
  sessionStorage.setItem(KEY_STORAGE, key);
  declined = false;
};
export const forgetKey = () => sessionStorage.removeItem(KEY_STORAGE);

// askForKey is set by the page: given why a key is needed, it resolves once the user
// has entered one and rejects if they decline. Callers waiting on a 401 at the same
// time share one question.
let askForKey = null;
let asking = null;
export function setKeyPrompt(fn) { askForKey = fn; }

async function needKey(err) {
  if (!askForKey || declined) throw err;
  asking ??= askForKey(err).catch((e) => {
    declined = true;
    throw e;
  }).finally(() => { asking = null; });
  await asking;
}

function authHeaders(headers = {}) {
  const h = new Headers(headers);
  const key = getKey();
  if (key) h.set('Authorization', `Bearer ${key}`);
  return h;
}

async function readError(res) {
  let body = null;
  try {
    body = await res.json();
  } catch {
    // not the API's error shape; the status says enough
  }
  return new APIError(res.status, body);
}

// request calls the API and returns the parsed JSON answer, or the Response itself
// with raw. It throws APIError for an error answer.
export async function request(method, path, {json, signal, raw = false} = {}) {
  for (;;) {
    const headers = json !== undefined ? {'Content-Type': 'application/json'} : {};
    const res = await fetch(apiURL(path), {
      method,
      headers: authHeaders(headers),
      body: json !== undefined ? JSON.stringify(json) : undefined,
      signal,
      cache: 'no-store',
    });
    if (res.status === 401) {
      await needKey(await readError(res));
      continue;
    }
    if (!res.ok) throw await readError(res);
    return raw ? res : res.json();
  }
}

export const get = (path, opts) => request('GET', path, opts);
export const post = (path, json, opts) => request('POST', path, {...opts, json});
export const del = (path, opts) => request('DELETE', path, opts);

// checkKey asks the API whether a key is accepted, without asking the user.
export async function checkKey(key) {
  const h = new Headers();
  if (key) h.set('Authorization', `Bearer ${key}`);
  const res = await fetch(apiURL('/batches?limit=1'), {headers: h, cache: 'no-store'});
  if (res.ok) return null;
  return readError(res);
}

// upload sends a file as multipart purpose=batch to POST /v1/files, reporting the
// upload's progress with onProgress(loaded, total). It uses XMLHttpRequest because
// fetch cannot report upload progress. signal aborts it.
export function upload(file, {onProgress, signal} = {}) {
  const attempt = () => new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', apiURL('/files'));
    for (const [k, v] of authHeaders()) xhr.setRequestHeader(k, v);
    xhr.upload.addEventListener('progress', (e) => {
      if (e.lengthComputable) onProgress?.(e.loaded, e.total);
    });
    xhr.addEventListener('load', () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        // left null
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else reject(new APIError(xhr.status, body));
    });
    xhr.addEventListener('error', () => reject(new Error('The upload failed: the connection to the server was lost.')));
    xhr.addEventListener('abort', () => reject(new DOMException('The upload was cancelled.', 'AbortError')));
    signal?.addEventListener('abort', () => xhr.abort(), {once: true});
    const form = new FormData();
    form.append('purpose', 'batch');
    form.append('file', file, file.name);
    xhr.send(form);
  });
  return (async () => {
    for (;;) {
      try {
        return await attempt();
      } catch (err) {
        if (!(err instanceof APIError) || err.status !== 401) throw err;
        await needKey(err);
      }
    }
  })();
}

// results reads the result lines a batch has committed after cursor ("" at first),
// of one type (all, output or error), calling onLine with each parsed line as it streams in, and returns the cursor to
// read on from (the Sluice-Results-Cursor header).
export async function results(batchID, cursor, onLine, {signal, type = 'all'} = {}) {
  const q = new URLSearchParams({type});
  if (cursor) q.set('cursor', cursor);
  const res = await request('GET', `/batches/${encodeURIComponent(batchID)}/results?${q}`, {raw: true, signal});
  const next = res.headers.get('Sluice-Results-Cursor') ?? cursor;
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let rest = '';
  const emit = (line) => {
    if (!line.trim()) return;
    try {
      onLine(JSON.parse(line));
    } catch {
      onLine({custom_id: null, error: {code: 'unreadable', message: 'A result line that is not JSON.'}});
    }
  };
  for (;;) {
    const {value, done} = await reader.read();
    if (done) break;
    rest += value;
    let i;
    while ((i = rest.indexOf('\n')) >= 0) {
      emit(rest.slice(0, i));
      rest = rest.slice(i + 1);
    }
  }
  emit(rest);
  return next;
}

// download fetches a file's content and saves it under filename. The key has to be
// sent as a header, so the file is fetched here and handed to the browser as a blob.
export async function download(fileID, filename) {
  const res = await request('GET', `/files/${encodeURIComponent(fileID)}/content`, {raw: true});
  const blob = await res.blob();
  const url = URL.createObjectURL(new Blob([blob], {type: 'application/jsonl'}));
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  return blob.size;
}

// fileNames caches file names by ID: they never change.
const fileNames = new Map();
export function fileName(fileID) {
  if (!fileID) return Promise.resolve(null);
  if (!fileNames.has(fileID)) {
    const p = get(`/files/${encodeURIComponent(fileID)}`).then((f) => f.filename, () => null);
    fileNames.set(fileID, p);
  }
  return fileNames.get(fileID);
}
