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
