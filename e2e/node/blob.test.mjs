// End-to-end test of a blob-mode batch (Azure OpenAI's input_blob and output_folder)
// on a running Sluice server, driven by the official `openai` npm package's
// AzureOpenAI client, with the input and the results in Azurite, read and written
// through @azure/storage-blob.
//
// Environment:
//   SLUICE_URL              base URL of the server (no trailing slash)
//   SLUICE_API_KEY          API key; empty means the server runs without auth
//   SLUICE_TEST_AZURITE     connection string of the Azurite the server is configured
//                           for (its storage_accounts list devstoreaccount1 with it);
//                           unset skips the test
//   SLUICE_REQUIRE_AZURITE  1 makes a missing SLUICE_TEST_AZURITE a failure
//
// e2e/run.sh sets them all under `make test`.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { AzureOpenAI, OpenAI } from 'openai';
import { BlobServiceClient } from '@azure/storage-blob';

const SLUICE_URL = (process.env.SLUICE_URL || '').replace(/\/+$/, '');
const RAW_KEY = process.env.SLUICE_API_KEY || '';
const API_KEY = RAW_KEY === '' ? 'unused' : RAW_KEY;
const DEPLOYMENT = process.env.SLUICE_DEPLOYMENT || 'gpt-4o-mini';
const AZURITE = process.env.SLUICE_TEST_AZURITE || '';
const REQUIRED = process.env.SLUICE_REQUIRE_AZURITE === '1';
const API_VERSION = '2025-04-01-preview';

const TERMINAL = new Set(['completed', 'failed', 'cancelled', 'expired']);
const QUESTIONS = ['When was Microsoft founded?', 'When was the first XBOX released?', 'What is Altair Basic?'];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const skip = AZURITE === '' && !REQUIRED ? 'SLUICE_TEST_AZURITE is not set: run under scripts/azurite.sh (make test does)' : false;

// A container of the test's own in Azurite, deleted when the test ends.
async function newContainer(t) {
  assert.ok(AZURITE, 'SLUICE_TEST_AZURITE must be set (SLUICE_REQUIRE_AZURITE=1)');
  const service = BlobServiceClient.fromConnectionString(AZURITE);
  const container = service.getContainerClient('e2e-' + randomBytes(6).toString('hex'));
  await container.create();
  t.after(() => container.deleteIfExists());
  return container;
}

async function download(container, name) {
  const blob = container.getBlobClient(name);
  if (!(await blob.exists())) return null;
  return (await blob.downloadToBuffer()).toString();
}

test('AzureOpenAI client: a blob-mode batch from input_blob to output_folder', { skip, timeout: 180_000 }, async (t) => {
  assert.ok(SLUICE_URL, 'SLUICE_URL must be set');
  const container = await newContainer(t);
  const lines = QUESTIONS.map((q, i) =>
    JSON.stringify({
      custom_id: `task-${i}`,
      method: 'POST',
      url: '/chat/completions',
      body: { model: DEPLOYMENT, messages: [{ role: 'user', content: q }] },
    }),
  );
  const input = container.getBlockBlobClient('in/batch.jsonl');
  const text = lines.join('\n') + '\n';
  await input.upload(text, Buffer.byteLength(text));
  const folder = container.url + '/results';

  const client = new AzureOpenAI({ endpoint: SLUICE_URL, apiKey: API_KEY, apiVersion: API_VERSION, maxRetries: 0 });
  // The SDK's types know input_file_id only; the blob fields go in the body as they are.
  const created = await client.batches.create({
    input_blob: input.url,
    output_folder: { url: folder },
    endpoint: '/chat/completions',
    completion_window: '24h',
    metadata: { suite: 'e2e-blob' },
  });
  assert.ok(created.id.startsWith('batch_'), JSON.stringify(created));
  assert.equal(created.input_blob, input.url);
  assert.equal(created.output_blob, '', 'output_blob is "" until the results are written');
  assert.equal(created.error_blob, '');
  assert.ok(created.input_file_id == null, `input_file_id: ${created.input_file_id}`);

  let batch = created;
  const deadline = Date.now() + 120_000;
  while (!TERMINAL.has(batch.status)) {
    assert.ok(Date.now() < deadline, `batch ${created.id} not terminal after 120 s: ${JSON.stringify(batch)}`);
    await sleep(200);
    batch = await client.batches.retrieve(created.id);
  }
  assert.equal(batch.status, 'completed', JSON.stringify(batch));
  assert.deepEqual(
    { total: batch.request_counts?.total, completed: batch.request_counts?.completed, failed: batch.request_counts?.failed },
    { total: 3, completed: 3, failed: 0 },
  );
  assert.deepEqual(batch.metadata, { suite: 'e2e-blob' });
  assert.equal(batch.output_blob, `${folder}/${created.id}/results.jsonl`);
  assert.equal(batch.error_blob, `${folder}/${created.id}/errors.jsonl`);

  const out = await download(container, `results/${created.id}/results.jsonl`);
  assert.ok(out !== null, 'results.jsonl is not in the container');
  const results = out.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l));
  assert.deepEqual(results.map((r) => r.custom_id).sort(), ['task-0', 'task-1', 'task-2']);
  for (const r of results) {
    assert.equal(r.response?.status_code, 200, JSON.stringify(r));
    assert.equal(typeof r.response?.body?.choices?.[0]?.message?.content, 'string', JSON.stringify(r));
  }
  // errors.jsonl is written only when a line failed.
  assert.equal(await download(container, `results/${created.id}/errors.jsonl`), null, 'errors.jsonl written though no line failed');
});

test('AzureOpenAI client: a blob URL off the configured accounts is a 400 on input_blob', { skip, timeout: 30_000 }, async (t) => {
  assert.ok(SLUICE_URL, 'SLUICE_URL must be set');
  const container = await newContainer(t);
  const client = new AzureOpenAI({ endpoint: SLUICE_URL, apiKey: API_KEY, apiVersion: API_VERSION, maxRetries: 0 });
  await assert.rejects(
    client.batches.create({
      input_blob: 'http://169.254.169.254/metadata/instance',
      output_folder: { url: container.url + '/results' },
      endpoint: '/chat/completions',
      completion_window: '24h',
    }),
    (err) => {
      assert.ok(err instanceof OpenAI.BadRequestError, `expected BadRequestError, got ${err?.constructor?.name}: ${err}`);
      assert.equal(err.param, 'input_blob');
      assert.match(err.message, /devstoreaccount1/);
      return true;
    },
  );
});
