// Usage export, legacy import and resumable import sessions (cpamp-api.md §4.6, storage §5.6).
import { rawRequest, request, type Connection } from './client';

export interface ImportResult {
  format: string;
  added: number;
  skipped: number;
  total: number;
  failed: number;
  unsupported?: number;
  warnings?: string[] | null;
}

export type SessionStatus =
  'uploading' | 'ready' | 'processing' | 'completed' | 'failed' | 'cancelled';

export interface ImportSession {
  id: string;
  filename: string;
  status: SessionStatus;
  size_bytes: number;
  received_bytes: number;
  chunk_size_bytes: number;
  created_at_ms: number;
  updated_at_ms: number;
  expires_at_ms: number;
  retryable: boolean;
  error?: string;
  result?: ImportResult;
}

export const kLegacyImportLimitBytes = 64 * 1024 * 1024;
export const kSessionStorageKey = 'cpa-manager-plus:usage-import-sessions:v1';
const kBase = '/v0/management/usage/import-sessions';

export interface ExportRange {
  fromMs?: number;
  toMs?: number;
}

/**
 * Keeps the JSONL lines whose `timestamp_ms` lies in [fromMs, toMs). Servers that ignore the
 * range query parameters still yield a correct range file this way; lines that do not parse
 * are dropped only when a range is set.
 */
export function filterJsonlByRange(text: string, range: ExportRange): string {
  if (range.fromMs === undefined && range.toMs === undefined) return text;
  const out: string[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const ts = (JSON.parse(line) as { timestamp_ms?: unknown }).timestamp_ms;
      if (typeof ts !== 'number') continue;
      if (range.fromMs !== undefined && ts < range.fromMs) continue;
      if (range.toMs !== undefined && ts >= range.toMs) continue;
      out.push(line);
    } catch {
      // not an event line
    }
  }
  return out.length ? `${out.join('\n')}\n` : '';
}

/**
 * Downloads the JSONL export (whole, or `[fromMs, toMs)` via `from_ms`/`to_ms`); returns the
 * blob, the server-chosen file name and the number of events.
 */
export async function exportUsage(
  conn: Connection,
  range: ExportRange = {},
): Promise<{ blob: Blob; filename: string; lines: number }> {
  const res = await rawRequest(conn, '/v0/management/usage/export', {
    timeoutMs: 120_000,
    query: { from_ms: range.fromMs, to_ms: range.toMs },
  });
  const cd = res.headers.get('content-disposition') ?? '';
  const m = /filename="?([^";]+)"?/i.exec(cd);
  const text = filterJsonlByRange(await res.text(), range);
  const lines = text ? text.split('\n').filter((l) => l.trim()).length : 0;
  return {
    blob: new Blob([text], { type: 'application/x-ndjson' }),
    filename: m?.[1] ?? 'usage-events.jsonl',
    lines,
  };
}

export const importUsageLegacy = (conn: Connection, file: Blob) =>
  request<ImportResult>(conn, '/v0/management/usage/import', {
    method: 'POST',
    body: file,
    headers: { 'Content-Type': 'application/x-ndjson' },
    timeoutMs: 600_000,
  });

export const createSession = (
  conn: Connection,
  filename: string,
  sizeBytes: number,
  resumeKey: string,
) =>
  request<ImportSession>(conn, kBase, {
    method: 'POST',
    json: { filename, size_bytes: sizeBytes, resume_key: resumeKey },
  });

export const getSession = (conn: Connection, id: string) =>
  request<ImportSession>(conn, `${kBase}/${id}`);

export const putChunk = (conn: Connection, id: string, offset: number, chunk: Blob) =>
  request<ImportSession>(conn, `${kBase}/${id}/chunk`, {
    method: 'PUT',
    query: { offset },
    body: chunk,
    headers: { 'Content-Type': 'application/octet-stream' },
    timeoutMs: 120_000,
  });

export const completeSession = (conn: Connection, id: string) =>
  request<ImportSession>(conn, `${kBase}/${id}/complete`, { method: 'POST' });

export const cancelSession = (conn: Connection, id: string) =>
  request<ImportSession>(conn, `${kBase}/${id}`, { method: 'DELETE' });

/** The [start, end) byte ranges still to upload, given what the server already holds. */
export function planChunks(
  sizeBytes: number,
  receivedBytes: number,
  chunkBytes: number,
): [number, number][] {
  const out: [number, number][] = [];
  const step = Math.max(1, chunkBytes);
  for (let start = Math.max(0, receivedBytes); start < sizeBytes; start += step) {
    out.push([start, Math.min(sizeBytes, start + step)]);
  }
  return out;
}

/** Progress in [0,1] for the bar: upload is 90 %, processing the remaining 10 %. */
export function sessionProgress(
  s: Pick<ImportSession, 'status' | 'size_bytes' | 'received_bytes'>,
): number {
  if (s.status === 'completed') return 1;
  const upload = s.size_bytes > 0 ? Math.min(1, s.received_bytes / s.size_bytes) : 0;
  if (s.status === 'processing') return 0.95;
  return upload * 0.9;
}

export interface StoredSession {
  resumeKey: string;
  id: string;
  filename: string;
  size: number;
  savedAtMs: number;
}

export function loadStoredSessions(): StoredSession[] {
  try {
    const v = JSON.parse(localStorage.getItem(kSessionStorageKey) ?? '[]') as unknown;
    return Array.isArray(v) ? (v as StoredSession[]) : [];
  } catch {
    return [];
  }
}

export function saveStoredSessions(list: StoredSession[]): void {
  localStorage.setItem(kSessionStorageKey, JSON.stringify(list.slice(-20)));
}
