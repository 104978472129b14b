// End-to-end test of the management panel: the REAL cpa-manager-plus binary (CPAMP_BINARY,
// embedding web/dist/management.html) + the fake CPA + Debian's Chromium via playwright-core.
// Covers: first-run setup wizard (incl. a localised server error), login in a fresh context,
// language switch, dark theme, every main page rendering without JS errors, 375 px layout,
// pure CPA panel mode. Screenshots go to <repo>/test-artifacts/.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, mkdirSync, rmSync, existsSync } from 'node:fs';
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
const chromePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const artifacts = path.join(repo, 'test-artifacts');
const kCpaKey = 'cpa-mgmt-key-e2e';
const kTimeoutMs = 20_000;

if (!binary || !existsSync(binary)) {
  console.error('Set CPAMP_BINARY to the cpa-manager-plus binary (built with the panel embedded).');
  process.exit(2);
}
mkdirSync(artifacts, { recursive: true });

/** Starts the server on port 0 in a temp dir; resolves with its URL and admin key. */
function startServer() {
  const dir = mkdtempSync(path.join(tmpdir(), 'cpamp-e2e-'));
  const child = spawn(binary, [], {
    cwd: dir,
    env: {
      ...process.env,
      HTTP_ADDR: '127.0.0.1:0',
      HOME: dir,
      USAGE_DATA_DIR: path.join(dir, 'data'),
      CPA_MANAGER_CONFIG: path.join(dir, 'config.json'),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${log}`)), 20_000);
    let key = '';
    const onData = (chunk) => {
      log += chunk.toString();
      key = /admin key generated: (\S+)/.exec(log)?.[1] ?? key;
      const port = /listening on [\d.]+:(\d+)/.exec(log)?.[1];
      if (key && port) {
        clearTimeout(timer);
        resolve({ url: `http://127.0.0.1:${port}`, key, dir, child, log: () => log });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => reject(new Error(`server exited ${code}:\n${log}`)));
  });
}

/** Tracks JS errors and unexpected HTTP failures on a page. */
function watch(page, label) {
  const problems = [];
  const allowed = [];
  page.on('pageerror', (e) => problems.push(`${label}: pageerror ${e.message}`));
  page.on('console', (m) => {
    // Chromium logs failed fetches as console errors; HTTP status is checked below instead.
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(`${label}: console ${m.text()}`);
  });
  page.on('response', (r) => {
    const s = r.status();
    // 501 = endpoint not implemented yet by the server (the page shows "not available").
    if (s >= 400 && s !== 501 && !allowed.some((a) => a(r))) problems.push(`${label}: HTTP ${s} ${r.request().method()} ${r.url()}`);
  });
  return { problems, allow: (fn) => allowed.push(fn) };
}

const results = [];
async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.push(`PASS ${name} (${Date.now() - t0} ms)`);
    console.log(`PASS ${name}`);
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
  await page.waitForLoadState('networkidle', { timeout: kTimeoutMs }).catch(() => undefined);
  await page.waitForFunction(() => !document.querySelector('.state-loading'), null, { timeout: kTimeoutMs });
}

let cpa;
let server;
let browser;
let failed = false;
try {
  cpa = await startFakeCpa({ key: kCpaKey, panelFile: path.join(webDir, 'dist/management.html') });
  server = await startServer();
  browser = await chromium.launch({
    executablePath: chromePath,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
    // playwright-core itself passes a fresh, empty --user-data-dir (it rejects one in args).
  });
  const panel = `${server.url}/management.html`;

  // 1. First-run setup through the wizard.
  const ctx1 = await browser.newContext({ viewport: { width: 1366, height: 900 }, locale: 'en-US' });
  const page = await ctx1.newPage();
  const w1 = watch(page, 'setup');
  // The first submit deliberately violates the CPA retention (expected 400).
  w1.allow((r) => r.url().endsWith('/setup') && r.status() === 400);
  await step('setup wizard is shown on a fresh server', async () => {
    await page.goto(panel);
    await page.getByTestId('setup-wizard').waitFor({ timeout: kTimeoutMs });
    await page.screenshot({ path: path.join(artifacts, 'setup-wizard.png') });
  });
  await step('setup wizard: admin key → CPA URL → key → monitoring → poll → review', async () => {
    const next = page.getByTestId('wizard-next');
    await page.fill('#setup-admin-key', server.key);
    await next.click();
    await page.fill('#setup-cpa-url', cpa.url);
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
    const text = await err.innerText();
    assert.match(text, /exceeds the CPA queue retention of 60 s/);
    assert.ok(await page.locator('#setup-poll').isVisible(), 'wizard returns to the polling step');
    await page.screenshot({ path: path.join(artifacts, 'setup-error.png') });
    await page.fill('#setup-poll', '500');
    await next.click();
    await next.click();
    await page.getByTestId('page-dashboard').waitFor({ timeout: kTimeoutMs });
    assert.ok(cpa.state.usageStatisticsEnabled, 'setup enabled CPA usage statistics');
  });
  await step('every main page renders (Manager Server mode)', async () => {
    for (const [name, route, testId] of kPages) {
      await page.goto(`${panel}#${route}`);
      await page.getByTestId(testId).waitFor({ timeout: kTimeoutMs });
      await settle(page);
      await page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });
    }
    await page.goto(`${panel}#/system`);
    await page.getByTestId('page-system').waitFor();
    await settle(page);
    assert.equal((await page.getByTestId('cpa-version').innerText()).trim(), '6.6.6-fake');
  });
  await ctx1.close();
  assert.deepEqual(w1.problems, []);

  // 2. Login in a fresh browser context, language switch, dark theme, mobile layout.
  const ctx2 = await browser.newContext({ viewport: { width: 1280, height: 860 }, locale: 'en-US' });
  const p2 = await ctx2.newPage();
  const w2 = watch(p2, 'login');
  w2.allow((r) => r.status() === 401 && r.url().includes('/v0/management/config'));
  await step('login with a wrong then the right admin key', async () => {
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
  });
  await step('language switch to Simplified Chinese', async () => {
    await p2.selectOption('#lang-select', 'zh-CN');
    await p2.getByRole('link', { name: '仪表盘' }).waitFor();
    assert.equal(await p2.evaluate(() => document.documentElement.lang), 'zh-CN');
    await p2.screenshot({ path: path.join(artifacts, 'dashboard-zh-CN.png'), fullPage: true });
    await p2.selectOption('#lang-select', 'en');
    await p2.getByRole('link', { name: 'Dashboard' }).waitFor();
  });
  await step('dark theme', async () => {
    await p2.selectOption('#theme-select', 'dark');
    assert.equal(await p2.evaluate(() => document.documentElement.dataset.theme), 'dark');
    await settle(p2);
    await p2.screenshot({ path: path.join(artifacts, 'dashboard-dark.png'), fullPage: true });
    await p2.reload();
    await p2.getByTestId('page-dashboard').waitFor({ timeout: kTimeoutMs });
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
      if (name === 'dashboard' || name === 'monitoring') await p2.screenshot({ path: path.join(artifacts, `${name}-375.png`), fullPage: true });
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

  // 3. Pure CPA panel mode: the same file served by CPA; manager-only pages are hidden.
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
  await cpa?.close();
  if (server) rmSync(server.dir, { recursive: true, force: true });
}
console.log(results.join('\n'));
console.log(failed ? 'E2E FAILED' : `E2E PASSED; screenshots in ${artifacts}`);
process.exit(failed ? 1 : 0);
