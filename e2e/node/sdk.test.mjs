// End-to-end test of a running Sluice server, driven by the official `openai`
// npm package (both the AzureOpenAI and the plain OpenAI client classes).
//
// Environment:
//   SLUICE_URL         base URL of the server, e.g. http://127.0.0.1:8080 (no trailing slash)
//   SLUICE_API_KEY     API key; empty means the server runs without auth ("unused" is sent)
//   SLUICE_DEPLOYMENT  model / deployment name written into the batch lines (default gpt-4o-mini)
//
// Run with: npm test   (node --test --test-reporter=spec sdk.test.mjs)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OpenAI, AzureOpenAI } from 'openai';

const SLUICE_URL = (process.env.SLUICE_URL || '').replace(/\/+$/, '');
const RAW_KEY = process.env.SLUICE_API_KEY || '';
const API_KEY = RAW_KEY === '' ? 'unused' : RAW_KEY;
const DEPLOYMENT = process.env.SLUICE_DEPLOYMENT || 'gpt-4o-mini';
const API_VERSION = '2024-10-21';

const TERMINAL = new Set(['completed', 'failed', 'cancelled', 'expired']);
const JUST_CREATED = new Set(['validating', 'in_progress', 'finalizing', 'completed']);

const QUESTIONS = [
  'When was Microsoft founded?',
  'When was the first XBOX released?',
  'What is Altair Basic?',
];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function requireURL() {
  assert.ok(SLUICE_URL, 'SLUICE_URL must be set, e.g. http://127.0.0.1:8080');
}

// Write the three-line batch input of the seed guide to a fresh temp dir.
function writeInput(url) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-e2e-'));
  const file = path.join(dir, 'test.jsonl');
  const lines = QUESTIONS.map((q, i) =>
    JSON.stringify({
      custom_id: `task-${i}`,
      method: 'POST',
      url,
      body: {
        model: DEPLOYMENT,
        messages: [
          { role: 'system', content: 'You are an AI assistant that helps people find information.' },
          { role: 'user', content: q },
        ],
      },
    }),
  );
  fs.writeFileSync(file, lines.join('\n') + '\n');
  return { dir, file };
}

// Look for an item with the given id across pages (bounded).
async function pageContains(pagePromise, id, maxPages = 50) {
  let page = await pagePromise;
  for (let n = 0; n < maxPages; n++) {
    assert.ok(Array.isArray(page.data), 'list response must carry a data array');
    if (page.data.some((x) => x.id === id)) return true;
    if (!page.hasNextPage()) return false;
    page = await page.getNextPage();
  }
  return false;
}

async function runFlow(t, client, endpoint) {
  const { dir, file: inputPath } = writeInput(endpoint);
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));

  // Upload.
  const uploaded = await client.files.create({ file: fs.createReadStream(inputPath), purpose: 'batch' });
  assert.equal(typeof uploaded.id, 'string');
  assert.ok(uploaded.id.startsWith('file-'), `file id ${uploaded.id} should start with "file-"`);

  // Wait until processed.
  let file = uploaded;
  for (let i = 0; i < 100 && file.status !== 'processed'; i++) {
    if (i > 0) await sleep(100);
    file = await client.files.retrieve(uploaded.id);
    assert.notEqual(file.status, 'error', `file processing failed: ${JSON.stringify(file)}`);
  }
  assert.equal(file.status, 'processed', `file never became processed: ${JSON.stringify(file)}`);
  assert.equal(file.id, uploaded.id);

  // Create the batch.
  const { data: created, response: createResponse } = await client.batches
    .create({
      input_file_id: uploaded.id,
      endpoint,
      completion_window: '24h',
      metadata: { suite: 'e2e' },
    })
    .withResponse();
  // Every create answer carries the deployment's enqueued tokens and its limit.
  const enqueued = createResponse.headers.get('deployment-enqueued-tokens');
  const maximum = createResponse.headers.get('deployment-maximum-enqueued-tokens');
  assert.match(enqueued ?? '', /^[1-9][0-9]*$/, `deployment-enqueued-tokens: ${enqueued}`);
  assert.match(maximum ?? '', /^([0-9]+|unlimited)$/, `deployment-maximum-enqueued-tokens: ${maximum}`);
  assert.equal(typeof created.id, 'string');
  assert.ok(created.id.startsWith('batch_'), `batch id ${created.id} should start with "batch_"`);
  assert.ok(JUST_CREATED.has(created.status), `unexpected status after create: ${created.status}`);
  assert.equal(created.input_file_id, uploaded.id);
  assert.equal(created.endpoint, endpoint);

  // Poll every 200 ms, at most 120 s.
  let batch = created;
  const deadline = Date.now() + 120_000;
  while (!TERMINAL.has(batch.status)) {
    assert.ok(Date.now() < deadline, `batch ${created.id} not terminal after 120 s: ${JSON.stringify(batch)}`);
    await sleep(200);
    batch = await client.batches.retrieve(created.id);
  }
  assert.equal(batch.status, 'completed', `batch ended ${batch.status}: ${JSON.stringify(batch)}`);
  assert.deepEqual(
    { total: batch.request_counts?.total, completed: batch.request_counts?.completed, failed: batch.request_counts?.failed },
    { total: 3, completed: 3, failed: 0 },
  );
  assert.deepEqual(batch.metadata, { suite: 'e2e' });

  // Output file.
  assert.ok(batch.output_file_id, `completed batch has no output_file_id: ${JSON.stringify(batch)}`);
  const outText = await (await client.files.content(batch.output_file_id)).text();
  const outLines = outText.split('\n').filter((l) => l.trim() !== '');
  assert.equal(outLines.length, 3, `expected 3 output lines, got:\n${outText}`);
  const results = outLines.map((l) => JSON.parse(l));
  assert.deepEqual(results.map((r) => r.custom_id).sort(), ['task-0', 'task-1', 'task-2']);
  for (const r of results) {
    const where = `output line ${r.custom_id}: ${JSON.stringify(r)}`;
    assert.equal(typeof r.id, 'string', where);
    assert.ok(r.id.startsWith('batch_req_'), where);
    assert.equal(r.error, null, where);
    assert.equal(r.response?.status_code, 200, where);
    const content = r.response?.body?.choices?.[0]?.message?.content;
    assert.equal(typeof content, 'string', where);
    assert.ok(content.length > 0, where);
    const total = r.response?.body?.usage?.total_tokens;
    assert.equal(typeof total, 'number', where);
    assert.ok(total > 0, where);
  }

  // Usage is the sum of the output lines' usage, counted once; the model is the deployment's.
  const sum = (f) => results.reduce((n, r) => n + f(r.response.body.usage), 0);
  assert.equal(batch.usage?.input_tokens, sum((u) => u.prompt_tokens), JSON.stringify(batch.usage));
  assert.equal(batch.usage?.output_tokens, sum((u) => u.completion_tokens), JSON.stringify(batch.usage));
  assert.equal(batch.usage?.total_tokens, sum((u) => u.total_tokens), JSON.stringify(batch.usage));
  assert.equal(batch.model, 'gpt-4o-mini');

  // Error file exists and is empty.
  assert.ok(batch.error_file_id, `completed batch has no error_file_id: ${JSON.stringify(batch)}`);
  const errText = await (await client.files.content(batch.error_file_id)).text();
  assert.equal(errText, '');

  // Listings.
  assert.ok(await pageContains(client.batches.list({ limit: 100 }), created.id), 'batches.list lacks the batch');
  assert.ok(await pageContains(client.files.list(), uploaded.id), 'files.list lacks the input file');

  // Delete the input file.
  const del = typeof client.files.delete === 'function' ? client.files.delete.bind(client.files) : client.files.del.bind(client.files);
  const deleted = await del(uploaded.id);
  assert.equal(deleted.id, uploaded.id);
  assert.equal(deleted.deleted, true);
}

test('AzureOpenAI client: upload, batch, poll, results, cleanup', { timeout: 180_000 }, async (t) => {
  requireURL();
  const client = new AzureOpenAI({ endpoint: SLUICE_URL, apiKey: API_KEY, apiVersion: API_VERSION, maxRetries: 0 });
  await runFlow(t, client, '/chat/completions');
});

test('AzureOpenAI client built for a deployment: create goes to the deployment', { timeout: 180_000 }, async (t) => {
  requireURL();
  const client = new AzureOpenAI({
    endpoint: SLUICE_URL, apiKey: API_KEY, apiVersion: API_VERSION, deployment: DEPLOYMENT, maxRetries: 0,
  });
  await runFlow(t, client, '/chat/completions');
});

test('OpenAI client: upload, batch, poll, results, cleanup', { timeout: 180_000 }, async (t) => {
  requireURL();
  const client = new OpenAI({ baseURL: SLUICE_URL + '/v1', apiKey: API_KEY, maxRetries: 0 });
  await runFlow(t, client, '/v1/chat/completions');
});

test(
  'OpenAI client with a wrong key is rejected with 401',
  { skip: RAW_KEY === '' ? 'SLUICE_API_KEY is empty: server runs without auth' : false, timeout: 30_000 },
  async () => {
    requireURL();
    const client = new OpenAI({ baseURL: SLUICE_URL + '/v1', apiKey: 'wrong-key', maxRetries: 0 });
    await assert.rejects(client.batches.list(), (err) => {
      assert.ok(err instanceof OpenAI.AuthenticationError, `expected AuthenticationError, got ${err?.constructor?.name}: ${err}`);
      assert.equal(err.status, 401);
      return true;
    });
  },
);

// A file sent through the Uploads API in parts, completed with an md5, becomes a file
// a batch runs from.
async function runUploadFlow(t, client, endpoint) {
  const { dir, file: inputPath } = writeInput(endpoint);
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const bytes = fs.readFileSync(inputPath);
  const upload = await client.uploads.create({ filename: 'parts.jsonl', purpose: 'batch', bytes: bytes.length, mime_type: 'text/jsonl' });
  assert.equal(upload.object, 'upload');
  assert.equal(upload.status, 'pending');
  const half = Math.floor(bytes.length / 2);
  const { toFile } = await import('openai');
  const second = await client.uploads.parts.create(upload.id, { data: await toFile(bytes.subarray(half), 'b') });
  const first = await client.uploads.parts.create(upload.id, { data: await toFile(bytes.subarray(0, half), 'a') });
  assert.equal(first.object, 'upload.part');
  assert.equal(first.upload_id, upload.id);
  const { createHash } = await import('node:crypto');
  const md5 = createHash('md5').update(bytes).digest('hex');
  const done = await client.uploads.complete(upload.id, { part_ids: [first.id, second.id], md5 });
  assert.equal(done.status, 'completed');
  assert.ok(done.file && done.file.id.startsWith('file-'), `completed upload: ${JSON.stringify(done)}`);
  assert.equal(done.file.bytes, bytes.length);
  const content = await (await client.files.content(done.file.id)).text();
  assert.equal(content, bytes.toString());
  const batch = await client.batches.create({ input_file_id: done.file.id, endpoint, completion_window: '24h' });
  let b = batch;
  for (let i = 0; i < 600 && !TERMINAL.has(b.status); i++) {
    await sleep(100);
    b = await client.batches.retrieve(batch.id);
  }
  assert.equal(b.status, 'completed', JSON.stringify(b));
  assert.equal(b.request_counts.completed, QUESTIONS.length);
  // A cancelled upload takes no more parts.
  const gone = await client.uploads.create({ filename: 'x.jsonl', purpose: 'batch', bytes: 10, mime_type: 'text/jsonl' });
  assert.equal((await client.uploads.cancel(gone.id)).status, 'cancelled');
  await assert.rejects(client.uploads.parts.create(gone.id, { data: await toFile(Buffer.from('x'), 'x') }), (err) => err.status === 409);
}

test('OpenAI client: a file in parts through the Uploads API', { timeout: 180_000 }, async (t) => {
  requireURL();
  const client = new OpenAI({ baseURL: SLUICE_URL + '/v1', apiKey: API_KEY, maxRetries: 0 });
  await runUploadFlow(t, client, '/v1/chat/completions');
});

test('AzureOpenAI client: a file in parts through the Uploads API', { timeout: 180_000 }, async (t) => {
  requireURL();
  const client = new AzureOpenAI({ endpoint: SLUICE_URL, apiKey: API_KEY, apiVersion: '2025-04-01-preview', maxRetries: 0 });
  await runUploadFlow(t, client, '/chat/completions');
});
