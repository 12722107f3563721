// Browser test of the Batch jobs page at /console, against a running `sluice serve`
// (e2e/console/run.sh starts one). It drives the system Chromium through
// playwright-core: enter the API key, upload files through the page, watch a job
// complete and download its output, cancel a slow job, retry a job's failed lines,
// see validation and API errors, and delete a file. Screenshots go to
// SLUICE_SCREENSHOTS (default e2e/console/screenshots).
import {after, before, describe, it} from 'node:test';
import assert from 'node:assert/strict';
import {mkdirSync, readFileSync} from 'node:fs';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {chromium} from 'playwright-core';

const URL_ = process.env.SLUICE_URL;
const KEY = process.env.SLUICE_API_KEY;
const OPEN_URL = process.env.SLUICE_OPEN_URL; // a server with no API key, if given
if (!URL_ || !KEY) throw new Error('set SLUICE_URL and SLUICE_API_KEY (e2e/console/run.sh does)');
const here = path.dirname(fileURLToPath(import.meta.url));
const SHOTS = process.env.SLUICE_SCREENSHOTS || path.join(here, 'screenshots');
mkdirSync(SHOTS, {recursive: true});

// The flags of ENVIRONMENT.md section 8: the Debian Chromium, never a downloaded one.
const LAUNCH = {
  executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run'],
};

const LONG = 90_000; // the slowest wait: a job running to its end

// jsonl makes a batch input: n chat lines; bad(i) lines ask for n=500, which the
// simulator refuses with 400, so they fail.
function jsonl(prefix, n, {bad = () => false, url = '/v1/chat/completions'} = {}) {
  let out = '';
  for (let i = 0; i < n; i++) {
    const body = {model: 'gpt-4o-mini', messages: [{role: 'user', content: `${prefix} question ${i}?`}]};
    if (bad(i)) body.n = 500;
    out += JSON.stringify({custom_id: `${prefix}-${i}`, method: 'POST', url, body}) + '\n';
  }
  return out;
}

let browser;
let context;
let page;
const problems = []; // uncaught errors and console errors, CSP refusals among them

async function uploadThroughPage(name, text) {
  await page.goto(`${URL_}/console/#/`);
  await page.locator('#file-input').setInputFiles({name, mimeType: 'application/jsonl', buffer: Buffer.from(text)});
}

// dropOnPage drops a file on the drop zone, as a drag from the desktop would.
async function dropOnPage(name, text) {
  await page.goto(`${URL_}/console/#/`);
  const dataTransfer = await page.evaluateHandle(([n, t]) => {
    const dt = new DataTransfer();
    dt.items.add(new File([t], n, {type: 'application/jsonl'}));
    return dt;
  }, [name, text]);
  await page.dispatchEvent('#dropzone', 'dragover', {dataTransfer});
  await page.dispatchEvent('#dropzone', 'drop', {dataTransfer});
}

// shot saves a screenshot, without the passing notice in its corner.
async function shot(name) {
  await page.evaluate(() => { document.getElementById('toast').hidden = true; });
  await page.screenshot({path: path.join(SHOTS, name), fullPage: true});
}

async function uploadAndOpenJob(name, text, {drop = false} = {}) {
  await (drop ? dropOnPage : uploadThroughPage)(name, text);
  await page.waitForURL(/#\/batches\/batch_/, {timeout: 20_000});
  await page.locator('.job-view[data-status]').waitFor();
  return decodeURIComponent(new URL(page.url()).hash.replace('#/batches/', ''));
}

async function waitForStatus(status, timeout = LONG) {
  await page.locator(`.job-view[data-status="${status}"]`).waitFor({timeout});
  const err = page.locator('#job-error');
  assert.equal(await err.isVisible(), false, `the job page shows an error: ${await err.textContent()}`);
}

const stat = (key) => page.locator(`dd[data-stat="${key}"]`).innerText();
const num = (s) => Number(s.replace(/[^\d]/g, ''));

describe('console', () => {
  before(async () => {
    browser = await chromium.launch(LAUNCH);
    context = await browser.newContext({viewport: {width: 1280, height: 900}, acceptDownloads: true});
    page = await context.newPage();
    page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
    page.on('console', (msg) => {
      // The browser logs every error answer (the 401 that asks for the key, the 400s
      // the test provokes); those are the API's to give. Anything else is the page's.
      if (msg.type() === 'error' && !/^Failed to load resource: the server responded with a status of 4\d\d/.test(msg.text())) {
        problems.push(`console: ${msg.text()}`);
      }
    });
  });

  after(async () => {
    await browser?.close();
  });

  it('asks for the API key on 401 and keeps it out of the URL', async () => {
    await page.goto(`${URL_}/console`); // the redirect to /console/
    assert.match(page.url(), /\/console\/$/);
    const dialog = page.locator('#key-dialog');
    await dialog.waitFor({state: 'visible'});
    // Declined, it stays closed and the page says why, until the header's button.
    await page.keyboard.press('Escape');
    await dialog.waitFor({state: 'hidden'});
    await page.getByText(/An API key is needed to list the batch jobs/).waitFor();
    await page.waitForTimeout(2500);
    assert.equal(await dialog.isVisible(), false, 'the key dialog came back by itself');
    await page.getByRole('button', {name: 'API key', exact: true}).click();
    await dialog.waitFor({state: 'visible'});
    await page.locator('#key-input').fill('wrong-key');
    await page.keyboard.press('Enter');
    await page.locator('#key-error').waitFor({state: 'visible'});
    assert.match(await page.locator('#key-error').innerText(), /Incorrect API key/);
    await page.locator('#key-input').fill(KEY);
    await page.getByRole('button', {name: 'Use key'}).click();
    await dialog.waitFor({state: 'hidden'});
    assert.equal(await page.evaluate(() => sessionStorage.getItem('sluice.apiKey')), KEY);
    assert.ok(!page.url().includes(KEY), 'the key is in the URL');
    await page.locator('#key-state[data-set="yes"]').waitFor();
    // The quota gauge of the simulator's deployment.
    await page.locator('.quota-item[data-deployment="gpt-4o-mini"] [role="meter"]').waitFor();
  });

  it('uploads a file, watches the job complete and downloads its output', async () => {
    // Record what the upload's progress bar shows, across the move to the job page.
    await page.evaluate(() => {
      window.uploadProgress = [];
      new MutationObserver(() => {
        const bar = document.querySelector('[aria-label="Upload progress"]');
        if (bar) window.uploadProgress.push(Number(bar.getAttribute('aria-valuenow')));
      }).observe(document.body, {subtree: true, attributes: true, attributeFilter: ['aria-valuenow']});
    });
    const id = await uploadAndOpenJob('greetings.jsonl', jsonl('hello', 12));
    const progress = await page.evaluate(() => window.uploadProgress);
    assert.ok(progress.includes(100), `the upload's progress never reached 100: ${progress}`);
    await waitForStatus('completed');
    assert.equal(num(await stat('completed')), 12);
    assert.equal(num(await stat('failed')), 0);
    assert.equal(num(await stat('total')), 12);
    assert.equal(await page.getByRole('progressbar', {name: `Progress of ${id}`}).getAttribute('aria-valuenow'), '100');
    // Every timestamp of the usual path is on the timeline.
    for (const stage of ['created_at', 'in_progress_at', 'finalizing_at', 'completed_at']) {
      await page.locator(`.timeline li.reached[data-stage="${stage}"]`).waitFor();
    }
    // The results so far show each line with its custom_id and status.
    await page.locator('.results-table tr[data-custom-id="hello-0"] .code-badge.ok').waitFor();
    assert.equal(await page.locator('.results-table tbody tr').count(), 12);

    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', {name: /Download output/}).click(),
    ]);
    assert.match(download.suggestedFilename(), /_output\.jsonl$/);
    const lines = readFileSync(await download.path(), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines.length, 12);
    assert.deepEqual(lines.map((l) => l.custom_id).sort(), Array.from({length: 12}, (_, i) => `hello-${i}`).sort());
    for (const l of lines) {
      assert.equal(l.response.status_code, 200);
      assert.ok(l.response.body.choices[0].message.content, `no answer for ${l.custom_id}`);
    }
    // A reload keeps the view: the hash holds the batch.
    await page.reload();
    await waitForStatus('completed', 10_000);
    assert.equal(await page.locator('.job-title').innerText(), id);
  });

  it('cancels a slow job after a confirmation', async () => {
    await uploadAndOpenJob('slow.jsonl', jsonl('slow', 3000));
    await waitForStatus('in_progress', 20_000);
    // Live progress: the counts move without a reload, and the chart gets points.
    await page.waitForFunction(() => Number(document.querySelector('dd[data-stat="completed"]').textContent.replace(/\D/g, '')) > 0,
      null, {timeout: 20_000});
    await page.waitForFunction(() => /latest/.test(document.querySelector('.chart canvas').getAttribute('aria-label')),
      null, {timeout: 20_000});
    await page.waitForTimeout(1500); // a few more polls, for a fuller chart
    await shot('job-running.png');

    // From the keyboard: Enter opens the dialog, Escape declines, and it keeps running.
    await page.getByRole('button', {name: 'Cancel batch'}).focus();
    await page.keyboard.press('Enter');
    const confirm = page.getByRole('dialog', {name: 'Cancel this batch?'});
    await confirm.waitFor();
    assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Keep running');
    await page.keyboard.press('Escape');
    await confirm.waitFor({state: 'hidden'});
    assert.equal(await page.locator('.job-view').getAttribute('data-status'), 'in_progress');
    await page.getByRole('button', {name: 'Cancel batch'}).click();
    await confirm.getByRole('button', {name: 'Cancel batch'}).click();
    await waitForStatus('cancelled');
    await page.locator('.timeline li.reached[data-stage="cancelling_at"]').waitFor();
    await page.locator('.timeline li.reached[data-stage="cancelled_at"]').waitFor();
    assert.ok(num(await stat('completed')) < 3000, 'the whole slow job ran before the cancel');
    assert.equal(await page.getByRole('button', {name: 'Cancel batch'}).isVisible(), false);
    await shot('job-cancelled.png');
  });

  it('retries the failed lines of a job as a new batch', async () => {
    const id = await uploadAndOpenJob('mixed.jsonl', jsonl('mixed', 30, {bad: (i) => i % 3 === 0}), {drop: true});
    await waitForStatus('completed');
    assert.equal(num(await stat('completed')), 20);
    assert.equal(num(await stat('failed')), 10);
    await page.locator('.results-table tr[data-custom-id="mixed-0"] .code-badge.bad').waitFor();
    assert.match(await page.locator('.results-table tr[data-custom-id="mixed-0"] .answer').innerText(), /Invalid 'n'/);
    // Only the failures, read afresh with type=error.
    await page.getByLabel('Failures only').check();
    await page.waitForFunction(() => document.querySelectorAll('.results-table tbody tr').length === 10
      && document.querySelectorAll('.results-table tbody tr.ok').length === 0);
    await page.getByLabel('All lines').check();
    await page.waitForFunction(() => document.querySelectorAll('.results-table tbody tr').length === 30);

    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', {name: /Download errors/}).click(),
    ]);
    assert.match(download.suggestedFilename(), /_error\.jsonl$/);
    const errors = readFileSync(await download.path(), 'utf8').trim().split('\n');
    assert.equal(errors.length, 10);
    await shot('job-completed-with-failures.png');
    await page.emulateMedia({colorScheme: 'dark'});
    await shot('job-dark.png');
    await page.setViewportSize({width: 390, height: 844});
    await shot('job-narrow-dark.png');
    await page.setViewportSize({width: 1280, height: 900});
    await page.emulateMedia({colorScheme: 'light'});

    await page.getByRole('button', {name: 'Retry failed lines'}).click();
    const link = page.locator('#retry-link');
    await link.waitFor();
    const retryID = await link.innerText();
    assert.notEqual(retryID, id);
    await link.click();
    await page.waitForURL(new RegExp(`#/batches/${retryID}$`));
    await page.locator(`.job-view[data-batch-id="${retryID}"][data-status="completed"]`).waitFor({timeout: LONG});
    assert.equal(num(await stat('total')), 10);
    assert.equal(num(await stat('failed')), 10); // the simulator refuses them again
    // The new batch links back to the one it retries.
    await page.locator(`.details a[href="#/batches/${id}"]`).waitFor();
  });

  it('shows the API\'s validation errors with their lines', async () => {
    const dup = jsonl('dup', 3).split('\n');
    dup[2] = dup[1]; // line 3 repeats line 2's custom_id
    await uploadAndOpenJob('duplicates.jsonl', dup.join('\n'));
    await waitForStatus('failed', 30_000);
    const row = page.locator('.errors-table tbody tr').first();
    await row.waitFor();
    assert.equal((await row.locator('td').first().innerText()).trim(), '3');
    assert.match(await row.innerText(), /custom_id/i);
    await page.locator('.timeline li.reached[data-stage="failed_at"]').waitFor();
  });

  it('shows the API\'s error when a create is refused, and its own for a file it cannot read', async () => {
    await uploadThroughPage('notjson.jsonl', 'this is not json\n');
    await page.locator('#create-error').waitFor({state: 'visible'});
    assert.match(await page.locator('#create-error').innerText(), /not JSON/);

    await uploadThroughPage('badurl.jsonl', jsonl('bad', 2, {url: '/v1/no-such-endpoint'}));
    const err = page.locator('#create-error');
    await err.waitFor({state: 'visible', timeout: 20_000});
    const text = await err.innerText();
    assert.match(text, /endpoint/i, text);
    assert.match(page.url(), /#\/$/, 'the page left the jobs list after a refused create');
  });

  it('lists the jobs with status, progress and counts', async () => {
    await page.goto(`${URL_}/console/#/`);
    const rows = page.locator('.jobs-table tbody tr');
    await page.waitForFunction(() => document.querySelectorAll('.jobs-table tbody tr').length >= 5);
    const statuses = await rows.evaluateAll((trs) => trs.map((tr) => tr.dataset.status));
    for (const s of ['completed', 'cancelled', 'failed']) assert.ok(statuses.includes(s), `no ${s} job in ${statuses}`);
    const first = rows.first();
    assert.ok(await first.locator('[role="progressbar"]').count(), 'a row has no progress bar');
    assert.ok(await first.locator('time').count(), 'a row has no created time');
    // Every control has a name.
    const unnamed = await page.evaluate(() => [...document.querySelectorAll('button, input, a[href], [role="meter"], [role="progressbar"]')]
      .filter((el) => {
        const name = el.getAttribute('aria-label') || el.textContent.trim() || el.labels?.[0]?.textContent.trim();
        return !name;
      }).map((el) => el.outerHTML.slice(0, 80)));
    assert.deepEqual(unnamed, []);
    // The file picker is reached from the keyboard, early in the page.
    await page.locator('body').focus();
    let reached = false;
    for (let i = 0; i < 8 && !reached; i++) {
      await page.keyboard.press('Tab');
      reached = await page.evaluate(() => document.activeElement?.id === 'file-input');
    }
    assert.ok(reached, 'Tab does not reach the file input');
    await page.waitForTimeout(500);
    await shot('jobs.png');

    // A narrow window gets the same page, one column.
    await page.setViewportSize({width: 390, height: 844});
    await page.waitForTimeout(300);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page is ${overflow}px wider than a narrow window`);
    await shot('jobs-narrow.png');
    await page.setViewportSize({width: 1280, height: 900});
  });

  it('lists the files and deletes one', async () => {
    await page.goto(`${URL_}/console/#/files`);
    const row = page.locator('.files-table tbody tr', {hasText: 'duplicates.jsonl'});
    await row.waitFor();
    await row.getByRole('button', {name: 'Delete duplicates.jsonl'}).click();
    const confirm = page.getByRole('dialog', {name: 'Delete this file?'});
    await confirm.getByRole('button', {name: 'Delete file'}).click();
    await row.waitFor({state: 'detached'});
    await page.locator('.files-table tbody tr', {hasText: 'greetings.jsonl'}).waitFor();
    await shot('files.png');
  });

  it('needs no key on a server that has none', {skip: !OPEN_URL && 'no SLUICE_OPEN_URL'}, async () => {
    const ctx = await browser.newContext({viewport: {width: 1280, height: 900}});
    try {
      const p = await ctx.newPage();
      p.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
      await p.goto(`${OPEN_URL}/console/`);
      await p.getByText('No batch jobs yet.').waitFor();
      await p.locator('.quota-item [role="meter"]').waitFor();
      assert.equal(await p.locator('#key-dialog').isVisible(), false);
      assert.equal(await p.locator('#key-state').innerText(), 'No key');
    } finally {
      await ctx.close();
    }
  });

  it('raised no script error and no policy violation', () => {
    assert.deepEqual(problems, []);
  });
});
