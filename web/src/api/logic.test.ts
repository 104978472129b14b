import { describe, expect, it } from 'vitest';
import { planChunks, sessionProgress } from './usage';
import { apiKeyHash, sha256HexOfString } from '../lib/sha256';
import { analyticsIncludeForTab, kAnalyticsTabs } from '../lib/analyticsTabs';
import { isManagerService, isSetupRequired } from './manager';
import { normalizeApiBase } from '../lib/session';
import { resolveRange } from '../lib/ranges';
import { buildUrl } from './client';

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
