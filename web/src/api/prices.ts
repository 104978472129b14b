// Model prices and API-key aliases (cpamp-api.md §4.7).
import { request, type Connection } from './client';

export interface ModelPrice {
  prompt: number;
  completion: number;
  cache?: number;
  cacheRead?: number;
  cacheCreation?: number;
  source?: string;
  sourceModelId?: string;
  contextTiers?: {
    thresholdTokens: number;
    prompt?: number;
    completion?: number;
    cache?: number;
  }[];
  serviceTiers?: {
    mode: string;
    serviceTier: string;
    prompt?: number;
    completion?: number;
    cache?: number;
  }[];
  updatedAtMs?: number;
  syncedAtMs?: number;
  [extra: string]: unknown;
}

export type PriceMap = Record<string, ModelPrice>;

export interface SyncCandidate {
  sourceModelId: string;
  score: number;
  reason: string;
  price: ModelPrice;
}

export interface SyncResult {
  source: string;
  sources?: string[];
  imported: number;
  skipped: number;
  matched?: PriceMap;
  candidates?: { model: string; candidates: SyncCandidate[] }[];
  unmatched?: string[];
  preserved?: string[];
  proxyUsed?: boolean;
  sourceResults?: { source: string; models: number; skipped: number; error?: string }[];
  prices?: PriceMap;
}

export interface UsageSummary {
  sampled_events: number;
  total_events: number;
  truncated: boolean;
  models: { model: string; calls: number; requested_calls: number; resolved_calls: number }[];
}

export interface AliasItem {
  apiKeyHash: string;
  alias: string;
  updatedAtMs?: number;
}

export const getPrices = async (conn: Connection) =>
  (await request<{ prices: PriceMap | null }>(conn, '/v0/management/model-prices')).prices ?? {};

export const putPrices = async (conn: Connection, prices: PriceMap) =>
  (
    await request<{ prices: PriceMap | null }>(conn, '/v0/management/model-prices', {
      method: 'PUT',
      json: { prices },
    })
  ).prices ?? {};

export const syncPrices = (conn: Connection, models?: string[]) =>
  request<SyncResult>(conn, '/v0/management/model-prices/sync', {
    method: 'POST',
    json: models && models.length ? { models } : {},
    timeoutMs: 60_000,
  });

export const getPriceUsageSummary = (conn: Connection) =>
  request<UsageSummary>(conn, '/v0/management/model-prices/usage-summary');

export const getAliases = async (conn: Connection) =>
  (await request<{ items: AliasItem[] | null }>(conn, '/v0/management/api-key-aliases')).items ??
  [];

export const putAliases = async (
  conn: Connection,
  items: { apiKeyHash: string; alias: string }[],
  activeApiKeyHashes?: string[],
) =>
  (
    await request<{ items: AliasItem[] | null }>(conn, '/v0/management/api-key-aliases', {
      method: 'PUT',
      json: { items, ...(activeApiKeyHashes ? { activeApiKeyHashes } : {}) },
    })
  ).items ?? [];

export const deleteAlias = (conn: Connection, hash: string) =>
  request<{ ok: boolean }>(conn, `/v0/management/api-key-aliases/${encodeURIComponent(hash)}`, {
    method: 'DELETE',
  });

/** Validates a price edit; returns an i18n key of the first problem, or null. */
export function validatePrice(
  model: string,
  p: Partial<ModelPrice>,
  existing: string[],
): string | null {
  if (!model.trim()) return 'prices.invalid.model';
  if (existing.includes(model.trim())) return 'prices.invalid.duplicate';
  for (const k of ['prompt', 'completion', 'cache', 'cacheRead', 'cacheCreation'] as const) {
    const v = p[k];
    if (v !== undefined && (!Number.isFinite(v) || v < 0)) return 'prices.invalid.value';
  }
  return null;
}

/** Keys the server derives itself on PUT; dropped from edited rows so stale flags never win. */
const kDerivedKeys = [
  'promptConfigured',
  'completionConfigured',
  'cacheReadConfigured',
  'rawJson',
  'sourceModelId',
];

/** An edited copy of `base` with new base prices (`cache` mirrors `cacheRead`). */
export function withBasePrices(
  base: ModelPrice | undefined,
  p: { prompt: number; completion: number; cacheRead: number; cacheCreation: number },
): ModelPrice {
  const merged: ModelPrice = { ...(base ?? {}), ...p, cache: p.cacheRead, source: 'manual' };
  return Object.fromEntries(
    Object.entries(merged).filter(([k]) => !kDerivedKeys.includes(k)),
  ) as ModelPrice;
}

/**
 * Parses a bulk paste: either a JSON object `{"model":{prompt,completion,…}}` (also the
 * `{"prices":{…}}` envelope), or one model per line — `model, input, output[, cache read[,
 * cache write]]` separated by commas, tabs, `|` or spaces; `#` comments and a header line
 * are ignored. Returns the parsed prices and the 1-based numbers of rejected lines.
 */
export function parseBulkPrices(text: string): { prices: PriceMap; badLines: number[] } {
  const trimmed = text.trim();
  const prices: PriceMap = {};
  const badLines: number[] = [];
  if (trimmed.startsWith('{')) {
    try {
      const raw = JSON.parse(trimmed) as Record<string, unknown>;
      const obj = (
        raw['prices'] && typeof raw['prices'] === 'object' ? raw['prices'] : raw
      ) as Record<string, Partial<ModelPrice>>;
      for (const [model, v] of Object.entries(obj)) {
        const vals = {
          prompt: Number(v.prompt ?? 0),
          completion: Number(v.completion ?? 0),
          cacheRead: Number(v.cacheRead ?? v.cache ?? 0),
          cacheCreation: Number(v.cacheCreation ?? 0),
        };
        if (!model.trim() || Object.values(vals).some((n) => !Number.isFinite(n) || n < 0))
          badLines.push(1);
        else prices[model.trim()] = withBasePrices(undefined, vals);
      }
    } catch {
      badLines.push(1);
    }
    return { prices, badLines };
  }
  text.split(/\r?\n/).forEach((line, i) => {
    const l = line.trim();
    if (!l || l.startsWith('#')) return;
    const cells = l.split(/\s*[,\t|;]\s*|\s+/).filter((c) => c !== '');
    const [model, ...nums] = cells;
    if (!model) return;
    if (i === 0 && nums.length && nums.every((n) => Number.isNaN(Number(n)))) return; // header
    const values = nums.map(Number);
    if (
      values.length < 2 ||
      values.length > 4 ||
      values.some((n) => !Number.isFinite(n) || n < 0)
    ) {
      badLines.push(i + 1);
      return;
    }
    prices[model] = withBasePrices(undefined, {
      prompt: values[0] ?? 0,
      completion: values[1] ?? 0,
      cacheRead: values[2] ?? 0,
      cacheCreation: values[3] ?? 0,
    });
  });
  return { prices, badLines };
}

/** `gpt-5(high)` → `gpt-5`: CPA's thinking suffix, which prices (analytics model) ignore. */
export function baseModelName(model: string): string {
  return model.replace(/\((?:[a-z-]+|\d+)\)$/i, '');
}

/** The price that applies to a model as seen in usage (exact name, else without suffix). */
export function priceFor(prices: PriceMap | undefined, model: string): ModelPrice | undefined {
  return prices?.[model] ?? prices?.[baseModelName(model)];
}
