// End-to-end test of the management panel with REAL data: the real cpa-manager-plus binary
// (CPAMP_BINARY, embedding web/dist/management.html) collecting from the real CPA simulator
// (CPAMP_SIM_BINARY, tools/cpa-sim) while Debian's Chromium drives the panel via playwright-core.
// Covers: first-run setup wizard against cpa-sim (incl. a localised server error), the
// simulator's traffic on the dashboard (cross-checked against GET /status), monitoring filters,
// the event drawer's redacted failure evidence with a DOM-wide scan for the simulator's secrets,
// a price edit changing the shown cost, export → import round trip (or the graceful "not
// available" state while the server answers 501), login in a fresh context, language switch,
// dark theme, 375 px layout, 401 → logout, and pure CPA panel mode (fake CPA serving the file).
// Screenshots go to <repo>/test-artifacts/. Budget: < 4 minutes.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, mkdirSync, rmSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { startFakeCpa } from './fake_cpa.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const webDir = path.join(repo, 'web');
const { chromium } = createRequire(path.join(webDir, 'package.json'))('playwright-core');

const binary = process.env.CPAMP_BINARY;
const simBinary =
  process.env.CPAMP_SIM_BINARY ?? (binary ? path.join(path.dirname(binary), 'cpa-sim') : '');
const chromePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const artifacts = path.join(repo, 'test-artifacts');
const kCpaKey = 'cpa-mgmt-key-e2e';
const kTimeoutMs = 20_000;
const kStartedAt = Date.now();

// Secrets the simulator puts into failure bodies (tools/cpa-sim/records.cc) plus the probe
// record below. None of them may ever reach the page.
const kSecrets = [
  'sk-proj-Zx81LmQ2vB7nR4tY9wE3uI6oP0aS5dF1gH8jK2lC',
  'sk-ant-api03-Qm9vZ2xlR29vZ2xlR29vZ2xlR29vZ2xl-AbCdEfAA',
  'eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9',
  'AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY',
  'ghp_4f8Kx2LmQ9vB7nR4tY9wE3uI6oP0aS5dF1gH',
  'sk-e2e-probe-9f8e7d6c5b4a39281706',
];
const kSecretPatterns = [/Bearer\s+eyJ/i, /sk-(?:proj|ant-api03|e2e-probe)-[A-Za-z0-9]{6}/];
const kProbeModel = 'e2e-secret-probe';

for (const [name, file] of [
  ['CPAMP_BINARY', binary],
  ['CPAMP_SIM_BINARY', simBinary],
]) {
  if (!file || !existsSync(file)) {
    console.error(`Set ${name} (the cpa-manager-plus binary with the panel embedded, and cpa-sim).`);
    process.exit(2);
  }
}
mkdirSync(artifacts, { recursive: true });

/** Spawns a process and resolves once `pattern` matches its output. */
function spawnAndWait(file, args, opts, pattern, label) {
  const child = spawn(file, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${label} did not start:\n${log}`)), 20_000);
    const onData = (chunk) => {
      log += chunk.toString();
      const m = pattern(log);
      if (m) {
        clearTimeout(timer);
        resolve({ child, log: () => log, ...m });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => reject(new Error(`${label} exited ${code}:\n${log}`)));
  });
}

async function startSim() {
  const sim = await spawnAndWait(
    simBinary,
    ['--listen', '127.0.0.1:0', '--management-key', kCpaKey, '--rate', '5', '--seed', '42'],
    {},
    (log) => {
      const port = /cpa-sim listening on 127\.0\.0\.1:(\d+)/.exec(log)?.[1];
      return port ? { url: `http://127.0.0.1:${port}` } : null;
    },
    'cpa-sim',
  );
  sim.ctl = async (p, body) => {
    const r = await fetch(`${sim.url}${p}`, { method: p === '/_sim/stats' ? 'GET' : 'POST', body });
    assert.equal(r.status, 200, `sim control ${p}`);
    return r.json();
  };
  return sim;
}

/** Starts the server on port 0 in a temp dir; resolves with its URL and admin key. */
async function startServer() {
  const dir = mkdtempSync(path.join(tmpdir(), 'cpamp-e2e-'));
  const srv = await spawnAndWait(
    binary,
    [],
    {
      cwd: dir,
      env: {
        ...process.env,
        HTTP_ADDR: '127.0.0.1:0',
        HOME: dir,
        USAGE_DATA_DIR: path.join(dir, 'data'),
        CPA_MANAGER_CONFIG: path.join(dir, 'config.json'),
      },
    },
    (log) => {
      const key = /admin key generated: (\S+)/.exec(log)?.[1];
      const port = /listening on [\d.]+:(\d+)/.exec(log)?.[1];
      return key && port ? { url: `http://127.0.0.1:${port}`, key } : null;
    },
    'server',
  );
  srv.dir = dir;
  srv.api = async (p, init = {}) => {
    const r = await fetch(`${srv.url}${p}`, {
      ...init,
      headers: { Authorization: `Bearer ${srv.key}`, ...(init.headers ?? {}) },
    });
    return r;
  };
  return srv;
}

/** Tracks JS errors and unexpected HTTP failures on a page. */
function watch(page, label) {
  const problems = [];
  const allowed = [
    // cpa-sim does not implement CPA's provider-key routes (the dashboard's "Provider keys"
    // quick stat reads them and shows "—" on 404).
    (r) =>
      r.status() === 404 &&
      /\/v0\/management\/(codex-api-key|claude-api-key|gemini-api-key|openai-compatibility|vertex-api-key|ampcode)/.test(
        r.url(),
      ),
  ];
  page.on('pageerror', (e) => problems.push(`${label}: pageerror ${e.message}`));
  page.on('console', (m) => {
    // Chromium logs failed fetches as console errors; HTTP status is checked below instead.
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource'))
      problems.push(`${label}: console ${m.text()}`);
  });
  page.on('response', (r) => {
    const s = r.status();
    // 501 = endpoint not implemented yet by the server (the page shows "not available").
    if (s >= 400 && s !== 501 && !allowed.some((a) => a(r)))
      problems.push(`${label}: HTTP ${s} ${r.request().method()} ${r.url()}`);
  });
  return { problems, allow: (fn) => allowed.push(fn) };
}

const results = [];
async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.push(`PASS ${name} (${Date.now() - t0} ms)`);
    console.log(`PASS ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    results.push(`FAIL ${name}: ${e.message}`);
    console.error(`FAIL ${name}\n${e.stack}`);
    throw e;
  }
}

const kPages = [
  ['dashboard', '/dashboard', 'page-dashboard'],
  ['monitoring', '/monitoring', 'page-monitoring'],
  ['usage-analytics', '/usage-analytics', 'page-analytics'],
  ['model-prices', '/model-prices', 'page-prices'],
  ['import-export', '/usage-io', 'page-import-export'],
  ['config', '/config', 'page-config'],
  ['system', '/system', 'page-system'],
];

async function settle(page) {
  await page.waitForLoadState('networkidle', { timeout: 8_000 }).catch(() => undefined);
  await page.waitForFunction(() => !document.querySelector('.state-loading'), null, {
    timeout: kTimeoutMs,
  });
}

/** Opens a hash route with fresh data (a same-hash goto would not reload the page). */
async function visit(page, url) {
  if (page.url() === url) await page.reload();
  else await page.goto(url);
}

const statValue = async (page, id) =>
  Number(await page.getByTestId(id).getAttribute('data-value'));

/** Fails if any simulator secret is present anywhere in the DOM (text and attributes). */
async function assertNoSecrets(page, where) {
  const html = await page.evaluate(
    () => document.documentElement.outerHTML + '\n' + document.body.innerText,
  );
  for (const s of kSecrets) assert.ok(!html.includes(s), `${where}: secret ${s.slice(0, 12)}… is visible`);
  for (const re of kSecretPatterns) assert.ok(!re.test(html), `${where}: ${re} matches the page`);
}

/** A CPA usage record (cpa-protocol.md §1.2) that failed with every secret shape in its body. */
function probeRecord() {
  const body =
    `{"error":{"message":"Incorrect API key provided: ${kSecrets[0]} / x-api-key ${kSecrets[1]} / ` +
    `Authorization: Bearer ${kSecrets[2]}.eyJzdWIiOiJlMmUifQ.c2ln / key ${kSecrets[3]} / ${kSecrets[4]} / ` +
    `${kSecrets[5]} for alice@example.com","type":"invalid_request_error"}}`;
  return JSON.stringify({
    timestamp: new Date().toISOString(),
    latency_ms: 1234,
    ttft_ms: 0,
    source: 'alice@example.com',
    auth_index: '45333f9784294f6d',
    client_ip: '10.0.4.23',
    user_agent: 'e2e-probe/1.0',
    tokens: { input_tokens: 0, output_tokens: 0, reasoning_tokens: 0, cached_tokens: 0, total_tokens: 0 },
    failed: true,
    fail: { status_code: 401, body },
    response_headers: { 'Content-Type': ['application/json'] },
    provider: 'codex',
    executor_type: 'CodexExecutor',
    model: kProbeModel,
    endpoint: 'POST /v1/responses',
    auth_type: 'oauth',
    api_key: 'sk-team-alpha-7c1d',
    request_id: 'e2e-probe-1',
  });
}

let cpa;
let sim;
let server;
let browser;
let failed = false;
try {
  [sim, server, cpa] = await Promise.all([
    startSim(),
    startServer(),
    startFakeCpa({ key: kCpaKey, panelFile: path.join(webDir, 'dist/management.html') }),
  ]);
  browser = await chromium.launch({
    executablePath: chromePath,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
    // playwright-core itself passes a fresh, empty --user-data-dir (it rejects one in args).
  });
  const panel = `${server.url}/management.html`;

  // 1. First-run setup through the wizard, against the simulator.
  const ctx1 = await browser.newContext({ viewport: { width: 1366, height: 900 }, locale: 'en-US', acceptDownloads: true });
  const page = await ctx1.newPage();
  const w1 = watch(page, 'setup');
  // The first submit deliberately violates the CPA retention (expected 400).
  w1.allow((r) => r.url().endsWith('/setup') && r.status() === 400);
  await step('setup wizard is shown on a fresh server', async () => {
    await page.goto(panel);
    await page.getByTestId('setup-wizard').waitFor({ timeout: kTimeoutMs });
    assert.equal((await sim.ctl('/_sim/stats')).usage_enabled, false, 'cpa-sim starts with usage off');
    await page.screenshot({ path: path.join(artifacts, 'setup-wizard.png') });
  });
  await step('setup wizard against cpa-sim: admin key → URL → key → monitoring → poll → review', async () => {
    const next = page.getByTestId('wizard-next');
    await page.fill('#setup-admin-key', server.key);
    await next.click();
    await page.fill('#setup-cpa-url', sim.url);
    await next.click();
    await page.fill('#setup-cpa-key', kCpaKey);
    await next.click();
    assert.equal(await page.isChecked('#setup-monitoring'), true);
    await next.click();
    await page.fill('#setup-poll', '120000');
    await next.click();
    await page.screenshot({ path: path.join(artifacts, 'setup-review.png') });
    await next.click();
    const err = page.getByTestId('login-error');
    await err.waitFor({ timeout: kTimeoutMs });
    assert.match(await err.innerText(), /exceeds the CPA queue retention of 60 s/);
    assert.ok(await page.locator('#setup-poll').isVisible(), 'wizard returns to the polling step');
    await page.screenshot({ path: path.join(artifacts, 'setup-error.png') });
    await page.fill('#setup-poll', '500');
    await next.click();
    await next.click();
    await page.getByTestId('page-dashboard').waitFor({ timeout: kTimeoutMs });
    assert.equal((await sim.ctl('/_sim/stats')).usage_enabled, true, 'setup enabled CPA usage statistics');
  });

  await step('the collector stores the simulator traffic', async () => {
    await sim.ctl('/_sim/generate?count=150');
    await sim.ctl('/_sim/publish', probeRecord());
    const deadline = Date.now() + 30_000;
    let events = 0;
    while (Date.now() < deadline) {
      events = (await (await server.api('/status')).json()).events ?? 0;
      if (events >= 150) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.ok(events >= 150, `only ${events} events stored`);
  });

  await step('dashboard shows the simulator traffic (matches /status)', async () => {
    await visit(page, `${panel}#/dashboard`);
    await page.getByTestId('today-stats').waitFor({ timeout: kTimeoutMs });
    await settle(page);
    const calls = await statValue(page, 'stat-requests');
    const tokens = await statValue(page, 'stat-tokens');
    const rpm = await statValue(page, 'stat-rpm');
    const status = await (await server.api('/status')).json();
    assert.ok(calls > 0 && tokens > 0 && rpm > 0, `calls ${calls}, tokens ${tokens}, rpm ${rpm}`);
    // Traffic keeps flowing at 5/s, so allow the counts to drift a little.
    assert.ok(Math.abs(calls - status.events) <= Math.max(30, status.events * 0.15), `dashboard ${calls} vs /status ${status.events}`);
    assert.equal(await statValue(page, 'stat-cost'), 0, 'no prices yet → zero cost');
    assert.match(await page.locator('.card', { hasText: 'Usage collector' }).innerText(), /running/);
    assert.ok((await page.locator('.health-strip > *').count()) >= 100, 'health strip has the day buckets');
    assert.ok((await page.locator('.card', { hasText: 'Top models' }).locator('tbody tr').count()) > 0);
    assert.ok((await page.locator('.card', { hasText: 'Channel health' }).locator('tbody tr').count()) > 0);
    assert.ok((await page.locator('.card', { hasText: 'Recent failed requests' }).locator('tbody tr').count()) > 0);
    await assertNoSecrets(page, 'dashboard');
    await page.screenshot({ path: path.join(artifacts, 'dashboard.png'), fullPage: true });
  });
  // Freeze traffic so the remaining counts are stable.
  await sim.ctl('/_sim/rate?value=0');

  await step('monitoring: filters narrow the realtime events table', async () => {
    await page.goto(`${panel}#/monitoring`);
    await page.getByTestId('summary-cards').waitFor({ timeout: kTimeoutMs });
    await page.getByRole('tab', { name: 'Realtime events' }).click();
    await page.getByTestId('events-total').waitFor({ timeout: kTimeoutMs });
    await settle(page);
    const all = Number(await page.getByTestId('events-total').getAttribute('data-value'));
    assert.ok(all >= 150, `all events ${all}`);
    assert.equal(await page.locator('tbody tr.clickable').count(), 50, 'first keyset page has 50 rows');
    await page.getByRole('button', { name: 'Next' }).click();
    await page.waitForFunction(() => document.querySelectorAll('tbody tr.clickable').length > 0);
    await page.getByRole('button', { name: 'Previous' }).click();
    await page.locator('#sel-status').selectOption('failed');
    await page.waitForFunction(
      (n) => Number(document.querySelector('[data-testid=events-total]')?.getAttribute('data-value')) < n,
      all,
      { timeout: kTimeoutMs },
    );
    const failures = Number(await page.getByTestId('events-total').getAttribute('data-value'));
    assert.ok(failures >= 1 && failures < all, `failures ${failures} of ${all}`);
    assert.equal(await page.locator('tbody tr.clickable:not(.row-failed)').count(), 0, 'only failures listed');
    await page.locator('#sel-model').selectOption(kProbeModel);
    await page.waitForFunction(
      () => document.querySelector('[data-testid=events-total]')?.getAttribute('data-value') === '1',
      null,
      { timeout: kTimeoutMs },
    );
    await page.screenshot({ path: path.join(artifacts, 'monitoring.png'), fullPage: true });
  });

  await step('monitoring: failure detail shows redacted evidence, no secret anywhere', async () => {
    await page.locator('tbody tr.clickable').first().click();
    const evidence = page.getByTestId('fail-evidence');
    await evidence.waitFor({ timeout: kTimeoutMs });
    const text = await evidence.innerText();
    assert.match(text, /401/);
    assert.match(text, /\[redacted\]/, 'evidence shows the redaction marker');
    assert.match(text, /Incorrect API key provided/, 'evidence keeps the non-secret text');
    await assertNoSecrets(page, 'monitoring drawer');
    await page.screenshot({ path: path.join(artifacts, 'monitoring-failure-detail.png') });
    await page.keyboard.press('Escape');
    await page.getByTestId('event-drawer').waitFor({ state: 'detached' });
    // Account masking toggle.
    await page.getByTestId('mask-accounts').check();
    const cell = await page.locator('tbody tr.clickable td').nth(1).innerText();
    assert.equal(cell.trim(), 'a***@example.com');
    await page.getByTestId('mask-accounts').uncheck();
    // Every generated failure (each sim body carries one secret shape) must be clean as well.
    await page.locator('#sel-model').selectOption('');
    await page.waitForFunction(
      () => Number(document.querySelector('[data-testid=events-total]')?.getAttribute('data-value')) > 1,
      null,
      { timeout: kTimeoutMs },
    );
    await settle(page);
    const rows = Math.min(15, await page.locator('tbody tr.clickable').count());
    let redacted = 0;
    for (let i = 0; i < rows; i++) {
      await page.locator('tbody tr.clickable').nth(i).click();
      await page.getByTestId('fail-evidence').waitFor({ timeout: kTimeoutMs });
      if ((await page.getByTestId('fail-evidence').innerText()).includes('[redacted]')) redacted++;
      await assertNoSecrets(page, `monitoring failure #${i + 1}`);
      await page.keyboard.press('Escape');
      await page.getByTestId('event-drawer').waitFor({ state: 'detached' });
    }
    assert.ok(redacted >= 1, 'some generated failures show redaction markers');
  });

  let pricedModel = '';
  await step('model prices: per-model call counts, price edit changes the cost', async () => {
    const summary = await (await server.api('/v0/management/model-prices/usage-summary')).json();
    pricedModel = summary.models.find((m) => !m.model.includes('(') && m.model !== kProbeModel).model;
    await page.goto(`${panel}#/model-prices`);
    await page.getByTestId('page-prices').waitFor();
    await settle(page);
    const usageRow = page.locator('tr', { has: page.locator('td', { hasText: new RegExp(`^${pricedModel.replace(/[.]/g, '\\.')}$`) }) }).first();
    assert.ok((await usageRow.innerText()).includes(String(summary.models.find((m) => m.model === pricedModel).calls)));
    await page.fill('#price-model', pricedModel);
    await page.fill('#price-prompt', '100');
    await page.fill('#price-completion', '200');
    await page.getByTestId('price-submit').click();
    await page.getByText('Prices saved.').waitFor({ timeout: kTimeoutMs });
    await page.goto(`${panel}#/dashboard`);
    await page.getByTestId('today-stats').waitFor();
    await settle(page);
    const cost1 = await statValue(page, 'stat-cost');
    assert.ok(cost1 > 0, `cost after pricing ${pricedModel}: ${cost1}`);
    // Edit: double both prices → the cost doubles.
    await page.goto(`${panel}#/model-prices`);
    await settle(page);
    await page.getByTestId('price-search').fill(pricedModel);
    await page.getByRole('button', { name: `Edit the price of ${pricedModel}` }).click();
    await page.fill('#price-prompt', '200');
    await page.fill('#price-completion', '400');
    await page.getByTestId('price-submit').click();
    await page.getByText('Prices saved.').waitFor({ timeout: kTimeoutMs });
    await page.getByTestId('price-search').fill('');
    // Bulk paste and the sync preview (sync itself needs the internet: it may fail, gracefully).
    await page.getByRole('button', { name: 'Bulk paste' }).click();
    await page.getByTestId('price-bulk').fill('e2e-bulk-a, 1, 2\ne2e-bulk-b\t3\t4\t0.5');
    await page.getByRole('button', { name: 'Apply pasted prices' }).click();
    await page.getByText('2 prices saved.').waitFor({ timeout: kTimeoutMs });
    const prices = (await (await server.api('/v0/management/model-prices')).json()).prices;
    assert.equal(prices['e2e-bulk-b'].cacheRead, 0.5);
    assert.equal(prices[pricedModel].prompt, 200);
    await page.getByTestId('sync-open').click();
    await page.getByTestId('sync-preview').waitFor();
    w1.allow((r) => r.url().endsWith('/model-prices/sync') && r.status() === 502);
    await page.getByTestId('sync-run').click();
    await page.waitForFunction(
      () => document.querySelector('[data-testid=sync-report], .state-error, .state-na'),
      null,
      { timeout: 60_000 },
    );
    await page.screenshot({ path: path.join(artifacts, 'model-prices.png'), fullPage: true });
    await page.goto(`${panel}#/dashboard`);
    await page.getByTestId('today-stats').waitFor();
    await settle(page);
    const cost2 = await statValue(page, 'stat-cost');
    // Doubled prices → doubled cost (a few in-flight records may still land after the freeze).
    assert.ok(cost2 >= 1.95 * cost1 && cost2 <= 2.5 * cost1, `cost ${cost1} → ${cost2}`);
  });

  await step('API-key alias labels the caller', async () => {
    await page.goto(`${panel}#/model-prices`);
    await page.getByRole('tab', { name: 'API key aliases' }).click();
    await page.locator('label', { hasText: 'API key' }).locator('select').selectOption({ index: 1 });
    await page.locator('label', { hasText: 'Alias' }).locator('input').fill('E2E team');
    await page.getByRole('button', { name: 'Save alias' }).click();
    await page.locator('td', { hasText: 'E2E team' }).waitFor({ timeout: kTimeoutMs });
    await page.screenshot({ path: path.join(artifacts, 'api-key-aliases.png'), fullPage: true });
  });

  await step('export then import round-trips', async () => {
    await page.goto(`${panel}#/usage-io`);
    await page.getByTestId('page-import-export').waitFor();
    const probe = await server.api('/v0/management/usage/export');
    assert.equal(probe.status, 200, 'the server implements usage export');
    const [download] = await Promise.all([
      page.waitForEvent('download', { timeout: 60_000 }),
      page.getByRole('button', { name: 'Download export' }).click(),
    ]);
    const file = path.join(server.dir, 'export.jsonl');
    await download.saveAs(file);
    const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l.trim());
    const status = await (await server.api('/status')).json();
    assert.equal(lines.length, status.events, 'export has every stored event');
    assert.match(await page.getByTestId('export-count').innerText(), new RegExp(`Exported ${lines.length.toLocaleString('en')} events`));
    const exported = readFileSync(file, 'utf8');
    for (const s of kSecrets) assert.ok(!exported.includes(s), 'export carries no raw secret');
    // Re-import the same file: every event is a duplicate.
    await page.setInputFiles('input[type=file]', file);
    await page.getByRole('button', { name: 'Import', exact: true }).click();
    const result = page.getByTestId('import-result');
    await result.waitFor({ state: 'attached', timeout: 60_000 });
    const r = JSON.parse(await result.textContent());
    assert.equal(r.total, lines.length);
    assert.equal(r.added, 0);
    assert.equal(r.skipped, lines.length);
    // One exported line rewritten as a new event: importing it adds exactly one.
    const fresh = JSON.parse(lines[lines.length - 1]);
    fresh.event_hash = 'e2e0'.repeat(16);
    fresh.request_id = 'e2e-import-new';
    fresh.timestamp_ms -= 1;
    fresh.timestamp = new Date(fresh.timestamp_ms).toISOString();
    const file2 = path.join(server.dir, 'import-new.jsonl');
    writeFileSync(file2, `${JSON.stringify(fresh)}\n`);
    await page.setInputFiles('input[type=file]', file2);
    await page.getByRole('button', { name: 'Import', exact: true }).click();
    await page.waitForFunction(
      () => JSON.parse(document.querySelector('[data-testid=import-result]')?.textContent ?? '{}').total === 1,
      null,
      { timeout: 60_000 },
    );
    assert.equal(JSON.parse(await result.textContent()).added, 1);
    assert.equal((await (await server.api('/status')).json()).events, status.events + 1);
    await page.screenshot({ path: path.join(artifacts, 'import-export.png'), fullPage: true });
  });

  await step('every main page renders real data (Manager Server mode)', async () => {
    for (const [name, route, testId] of kPages) {
      await page.goto(`${panel}#${route}`);
      await page.getByTestId(testId).waitFor({ timeout: kTimeoutMs });
      await settle(page);
      if (!['dashboard', 'monitoring', 'model-prices', 'import-export'].includes(name))
        await page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });
    }
    await page.goto(`${panel}#/usage-analytics`);
    await settle(page);
    for (const tab of ['Trends', 'Models', 'Credentials', 'Heatmap']) {
      await page.getByRole('tab', { name: tab }).click();
      await settle(page);
      assert.equal(await page.locator('.state-error').count(), 0, `analytics ${tab} tab errors`);
    }
    await page.getByRole('tab', { name: 'Models' }).click();
    await page.waitForFunction(() => document.querySelectorAll('tbody tr').length > 3, null, {
      timeout: kTimeoutMs,
    }); // the models tab lists the simulator's models
    await page.screenshot({ path: path.join(artifacts, 'usage-analytics-models.png'), fullPage: true });
    await page.goto(`${panel}#/system`);
    await page.getByTestId('page-system').waitFor();
    await settle(page);
    assert.equal((await page.getByTestId('cpa-version').innerText()).trim(), '7.2.140');
  });
  await ctx1.close();
  assert.deepEqual(w1.problems, []);

  // 2. Login in a fresh browser context, language switch, dark theme, mobile layout.
  const ctx2 = await browser.newContext({ viewport: { width: 1280, height: 860 }, locale: 'en-US' });
  const p2 = await ctx2.newPage();
  const w2 = watch(p2, 'login');
  w2.allow((r) => r.status() === 401 && r.url().includes('/v0/management/config'));
  await step('login in a fresh browser with a wrong then the right admin key', async () => {
    await p2.goto(panel);
    await p2.getByTestId('manager-login').waitFor({ timeout: kTimeoutMs });
    await p2.fill('#login-admin-key', 'cpamp_wrong');
    await p2.getByRole('button', { name: 'Sign in' }).click();
    assert.match(await p2.getByTestId('login-error').innerText(), /Invalid admin key/);
    await p2.screenshot({ path: path.join(artifacts, 'login.png') });
    await p2.fill('#login-admin-key', server.key);
    await p2.getByRole('button', { name: 'Sign in' }).click();
    await p2.getByTestId('page-dashboard').waitFor({ timeout: kTimeoutMs });
    await settle(p2);
    assert.ok((await statValue(p2, 'stat-requests')) >= 150, 'data visible after a fresh login');
  });
  await step('language switch to Simplified Chinese', async () => {
    await p2.selectOption('#lang-select', 'zh-CN');
    await p2.getByRole('link', { name: '仪表盘' }).waitFor();
    assert.equal(await p2.evaluate(() => document.documentElement.lang), 'zh-CN');
    await settle(p2);
    await p2.screenshot({ path: path.join(artifacts, 'dashboard-zh-CN.png'), fullPage: true });
    await p2.selectOption('#lang-select', 'en');
    await p2.getByRole('link', { name: 'Dashboard' }).waitFor();
  });
  await step('dark theme', async () => {
    await p2.selectOption('#theme-select', 'dark');
    assert.equal(await p2.evaluate(() => document.documentElement.dataset.theme), 'dark');
    await settle(p2);
    await p2.screenshot({ path: path.join(artifacts, 'dashboard-dark.png'), fullPage: true });
    await p2.goto(`${panel}#/monitoring`);
    await p2.getByTestId('summary-cards').waitFor({ timeout: kTimeoutMs });
    await settle(p2);
    await p2.screenshot({ path: path.join(artifacts, 'monitoring-dark.png'), fullPage: true });
    await p2.reload();
    await p2.getByTestId('page-monitoring').waitFor({ timeout: kTimeoutMs });
    assert.equal(await p2.evaluate(() => document.documentElement.dataset.theme), 'dark', 'theme persists');
  });
  await step('375 px layout has no horizontal overflow', async () => {
    await p2.setViewportSize({ width: 375, height: 780 });
    for (const [name, route, testId] of kPages) {
      await p2.goto(`${panel}#${route}`);
      await p2.getByTestId(testId).waitFor({ timeout: kTimeoutMs });
      await settle(p2);
      const overflow = await p2.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 1, `${name} overflows by ${overflow}px at 375px`);
      if (name === 'dashboard' || name === 'monitoring')
        await p2.screenshot({ path: path.join(artifacts, `${name}-375.png`), fullPage: true });
    }
    await p2.getByRole('button', { name: 'Open menu' }).click();
    await p2.getByRole('link', { name: 'System' }).click();
    await p2.getByTestId('page-system').waitFor();
  });
  await step('a 401 logs the session out', async () => {
    await p2.evaluate(() => {
      for (const area of [localStorage, sessionStorage]) {
        const raw = area.getItem('cli-proxy-auth');
        if (raw) area.setItem('cli-proxy-auth', JSON.stringify({ ...JSON.parse(raw), credential: 'cpamp_revoked' }));
      }
    });
    w2.allow((r) => r.status() === 401);
    await p2.reload();
    await p2.getByTestId('manager-login').waitFor({ timeout: kTimeoutMs });
  });
  await ctx2.close();
  assert.deepEqual(w2.problems, []);

  // 3. Pure CPA panel mode: the same file served by (fake) CPA; manager-only pages are hidden.
  const ctx3 = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const p3 = await ctx3.newPage();
  const w3 = watch(p3, 'cpa-mode');
  w3.allow((r) => r.url().endsWith('/usage-service/info') && r.status() === 404);
  await step('CPA panel mode: login with the CPA Management Key', async () => {
    await p3.goto(`${cpa.url}/management.html`);
    await p3.getByTestId('external-login').waitFor({ timeout: kTimeoutMs });
    await p3.fill('#login-cpa-key', kCpaKey);
    await p3.getByRole('button', { name: 'Sign in' }).click();
    await p3.getByTestId('page-dashboard').waitFor({ timeout: kTimeoutMs });
    await settle(p3);
    assert.equal(await p3.getByRole('link', { name: 'Request monitoring' }).count(), 0);
    await p3.screenshot({ path: path.join(artifacts, 'dashboard-cpa-mode.png'), fullPage: true });
  });
  await ctx3.close();
  assert.deepEqual(w3.problems, []);
} catch (e) {
  failed = true;
  if (!results.some((r) => r.startsWith('FAIL'))) console.error(e);
  if (server) console.error(`--- server log ---\n${server.log().slice(-4000)}`);
} finally {
  await browser?.close().catch(() => undefined);
  server?.child.kill('SIGTERM');
  sim?.child.kill('SIGTERM');
  await cpa?.close();
  if (server) rmSync(server.dir, { recursive: true, force: true });
}
console.log(results.join('\n'));
console.log(`${failed ? 'E2E FAILED' : `E2E PASSED; screenshots in ${artifacts}`} (${Math.round((Date.now() - kStartedAt) / 1000)} s)`);
process.exit(failed ? 1 : 0);
