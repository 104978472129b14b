import { describe, expect, it } from 'vitest';
import { filterJsonlByRange, planChunks, sessionProgress } from './usage';
import { apiKeyHash, sha256HexOfString } from '../lib/sha256';
import { analyticsIncludeForTab, kAnalyticsTabs } from '../lib/analyticsTabs';
import { isManagerService, isSetupRequired } from './manager';
import { normalizeApiBase } from '../lib/session';
import { resolveRange } from '../lib/ranges';
import { buildUrl } from './client';
import { baseModelName, parseBulkPrices, priceFor, withBasePrices } from './prices';

describe('sha256', () => {
  it('matches known vectors', () => {
    expect(sha256HexOfString('')).toBe(
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
    expect(sha256HexOfString('abc')).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
    expect(sha256HexOfString('a'.repeat(1000))).toBe(
      '41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3',
    );
  });
  it('hashes trimmed API keys like the server', () => {
    expect(apiKeyHash('  abc \n')).toBe(sha256HexOfString('abc'));
  });
});

describe('import sessions', () => {
  it('plans the remaining chunks from received_bytes', () => {
    expect(planChunks(10, 0, 4)).toEqual([
      [0, 4],
      [4, 8],
      [8, 10],
    ]);
    expect(planChunks(10, 4, 4)).toEqual([
      [4, 8],
      [8, 10],
    ]);
    expect(planChunks(10, 10, 4)).toEqual([]);
  });
  it('reports progress', () => {
    expect(
      sessionProgress({ status: 'uploading', size_bytes: 100, received_bytes: 50 }),
    ).toBeCloseTo(0.45);
    expect(sessionProgress({ status: 'completed', size_bytes: 100, received_bytes: 100 })).toBe(1);
  });
});

describe('usage analytics tabs', () => {
  it('each tab requests only its own sections', () => {
    expect(analyticsIncludeForTab('models', 'auto')).toEqual({ model_stats: true });
    expect(analyticsIncludeForTab('heatmap', 'auto')).toEqual({ heatmap: true });
    expect(analyticsIncludeForTab('trends', 'day')).toEqual({ timeline: true, granularity: 'day' });
    const all = kAnalyticsTabs.map((t) =>
      Object.keys(analyticsIncludeForTab(t, 'auto')).filter((k) => k !== 'granularity'),
    );
    const seen = new Set<string>();
    for (const keys of all)
      for (const k of keys) {
        expect(seen.has(k), k).toBe(false);
        seen.add(k);
      }
  });
});

describe('mode detection', () => {
  it('recognises the manager service ids', () => {
    expect(isManagerService({ service: 'cpa-manager-plus' })).toBe(true);
    expect(isManagerService({ service: 'cpa-usage-service' })).toBe(true);
    expect(isManagerService({ service: 'something-else' })).toBe(false);
    expect(isManagerService(null)).toBe(false);
  });
  it('needs setup when not initialised', () => {
    expect(isSetupRequired({ service: 'cpa-manager-plus', setupRequired: true })).toBe(true);
    expect(isSetupRequired({ service: 'cpa-manager-plus', configured: false })).toBe(true);
    expect(
      isSetupRequired({
        service: 'cpa-manager-plus',
        projectInitialized: true,
        setupRequired: false,
      }),
    ).toBe(false);
  });
});

describe('addresses and ranges', () => {
  it('normalises CPA addresses', () => {
    expect(normalizeApiBase('cpa:8317/v0/management/')).toBe('http://cpa:8317');
    expect(normalizeApiBase('https://x.example/v0')).toBe('https://x.example');
  });
  it('builds query strings', () => {
    expect(buildUrl('http://h/', '/a', { x: 1, y: undefined, z: 'a b' })).toBe(
      'http://h/a?x=1&z=a%20b',
    );
  });
  it('resolves ranges as half-open windows', () => {
    const now = Date.UTC(2026, 5, 5, 12);
    const r = resolveRange('24h', now);
    expect(r.to - r.from).toBe(86_400_001);
    const y = resolveRange('yesterday', now);
    expect(y.to - y.from).toBeGreaterThanOrEqual(23 * 3600_000);
  });
});

describe('bulk price paste', () => {
  it('parses CSV/TSV lines, skips a header and comments, reports bad lines', () => {
    const r = parseBulkPrices(
      'model,input,output,cache read\n# comment\ngpt-5, 1.25, 10, 0.125\nclaude-x\t3\t15\nbad-line 1\nneg -1 2\n',
    );
    expect(Object.keys(r.prices)).toEqual(['gpt-5', 'claude-x']);
    expect(r.prices['gpt-5']).toMatchObject({
      prompt: 1.25,
      completion: 10,
      cacheRead: 0.125,
      cache: 0.125,
    });
    expect(r.prices['claude-x']).toMatchObject({ prompt: 3, completion: 15, cacheRead: 0 });
    expect(r.badLines).toEqual([5, 6]);
  });
  it('accepts a JSON price map or the {prices} envelope', () => {
    const r = parseBulkPrices('{"prices":{"m1":{"prompt":2,"completion":4,"cache":0.5}}}');
    expect(r.prices['m1']).toMatchObject({
      prompt: 2,
      completion: 4,
      cacheRead: 0.5,
      source: 'manual',
    });
    expect(parseBulkPrices('{not json').badLines).toEqual([1]);
  });
  it('edits keep tiers but drop derived flags', () => {
    const p = withBasePrices(
      { prompt: 1, completion: 2, promptConfigured: true, contextTiers: [{ thresholdTokens: 5 }] },
      { prompt: 3, completion: 4, cacheRead: 0, cacheCreation: 0 },
    );
    expect(p.prompt).toBe(3);
    expect(p.contextTiers).toHaveLength(1);
    expect('promptConfigured' in p).toBe(false);
  });
});

describe('range export filter', () => {
  const lines = [1000, 2000, 3000].map((ts) => JSON.stringify({ timestamp_ms: ts, model: 'm' }));
  const text = `${lines.join('\n')}\nnot json\n`;
  it('keeps [from, to) and drops non-event lines', () => {
    expect(filterJsonlByRange(text, { fromMs: 2000, toMs: 3000 })).toBe(`${lines[1]}\n`);
    expect(filterJsonlByRange(text, { fromMs: 1500 })).toBe(`${lines[1]}\n${lines[2]}\n`);
    expect(filterJsonlByRange(text, { toMs: 500 })).toBe('');
  });
  it('returns the body untouched without a range', () => {
    expect(filterJsonlByRange(text, {})).toBe(text);
  });
});

describe('thinking suffix', () => {
  it('prices a suffixed model through its base model', () => {
    expect(baseModelName('gpt-5.5(xhigh)')).toBe('gpt-5.5');
    expect(baseModelName('gemini-2.5-pro(8192)')).toBe('gemini-2.5-pro');
    expect(baseModelName('gpt-4o-mini')).toBe('gpt-4o-mini');
    const prices = { 'gpt-5.5': { prompt: 1, completion: 2 } };
    expect(priceFor(prices, 'gpt-5.5(high)')?.prompt).toBe(1);
    expect(priceFor(prices, 'o4-mini')).toBeUndefined();
  });
});
