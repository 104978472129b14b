// CPA Management API calls used by the panel (proxied by Manager Server in Full Mode).
import { rawRequest, request, type Connection } from './client';

export type CpaConfig = Record<string, unknown>;

export const getCpaConfig = (conn: Connection) => request<CpaConfig>(conn, '/v0/management/config');

/** Reads the CPA version headers from a proxied call. */
export async function getCpaVersion(
  conn: Connection,
): Promise<{ version: string; buildDate: string }> {
  const res = await rawRequest(conn, '/v0/management/config');
  return {
    version: res.headers.get('x-cpa-version') ?? '',
    buildDate: res.headers.get('x-cpa-build-date') ?? '',
  };
}

export async function getApiKeys(conn: Connection): Promise<string[]> {
  const r = await request<{ 'api-keys'?: string[] }>(conn, '/v0/management/api-keys');
  return r?.['api-keys'] ?? [];
}

/** Count of entries under a list endpoint such as `gemini-api-key`; null when unavailable. */
export async function countList(conn: Connection, head: string): Promise<number | null> {
  try {
    const r = await request<Record<string, unknown>>(conn, `/v0/management/${head}`);
    const v = r?.[head] ?? r?.['files'];
    return Array.isArray(v) ? v.length : 0;
  } catch {
    return null;
  }
}

export async function getAuthFileCount(conn: Connection): Promise<number | null> {
  try {
    const r = await request<{ files?: unknown[] }>(conn, '/v0/management/auth-files');
    return r?.files?.length ?? 0;
  } catch {
    return null;
  }
}

export interface ModelEntry {
  id: string;
  owned_by?: string;
}

export async function getModels(conn: Connection, apiKey: string): Promise<ModelEntry[]> {
  const r = await request<{ data?: ModelEntry[] }>(
    { apiBase: conn.apiBase, credential: apiKey },
    '/v1/models',
    {
      anonymous: false,
    },
  );
  return r?.data ?? [];
}
