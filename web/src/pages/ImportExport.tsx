// Usage import/export (A.4.11). Export downloads JSONL. Import uses resumable chunked sessions
// (create → PUT chunks from received_bytes → complete → poll) with a progress bar; sessions
// are remembered in localStorage so an interrupted upload of the same file resumes. Falls back
// to the single-request import when the server has no session endpoint.
import { useRef, useState } from 'preact/hooks';
import { useT, langStore } from '../i18n';
import { useStore } from '../lib/store';
import { useSession } from '../lib/session';
import { formatBytes, formatNumber } from '../lib/format';
import { sha256HexOfString } from '../lib/sha256';
import { ApiError } from '../api/client';
import {
  cancelSession,
  completeSession,
  createSession,
  exportUsage,
  getSession,
  importUsageLegacy,
  kLegacyImportLimitBytes,
  loadStoredSessions,
  planChunks,
  putChunk,
  saveStoredSessions,
  sessionProgress,
  type ImportResult,
  type ImportSession,
} from '../api/usage';
import { Card, ErrorBox, Notice, Progress, Select } from '../components/ui';
import { fromLocalInput, resolveRange, toLocalInput, type MonitoringRange } from '../lib/ranges';

type ExportScope = Exclude<MonitoringRange, '14d'>;

/** Stable 32-hex resume key for a file: same name, size and mtime → same session. */
export function resumeKeyFor(name: string, size: number, lastModified: number): string {
  return sha256HexOfString(`${name}\n${size}\n${lastModified}`).slice(0, 32);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function ImportExportPage() {
  const t = useT();
  const lang = useStore(langStore);
  const session = useSession();
  const [exporting, setExporting] = useState(false);
  const [exportError, setExportError] = useState<unknown>(undefined);
  const [scope, setScope] = useState<ExportScope>('all');
  const [custom, setCustom] = useState(() => ({ from: Date.now() - 86_400_000, to: Date.now() }));
  const [exported, setExported] = useState<number | null>(null);
  const [file, setFile] = useState<File | null>(null);
  const [progress, setProgress] = useState<number | null>(null);
  const [phase, setPhase] = useState('');
  const [result, setResult] = useState<ImportResult | null>(null);
  const [error, setError] = useState<unknown>(undefined);
  const active = useRef<{ id: string | null; cancelled: boolean }>({ id: null, cancelled: false });

  const doExport = async () => {
    setExporting(true);
    setExportError(undefined);
    setExported(null);
    try {
      const range =
        scope === 'all'
          ? {}
          : (({ from, to }) => ({ fromMs: from, toMs: to }))(
              resolveRange(scope, Date.now(), custom),
            );
      const { blob, filename, lines } = await exportUsage(session, range);
      setExported(lines);
      const url = URL.createObjectURL(blob);
      const a = document.createElement('a');
      a.href = url;
      a.download = filename;
      a.click();
      setTimeout(() => URL.revokeObjectURL(url), 1000);
    } catch (e) {
      setExportError(e);
    } finally {
      setExporting(false);
    }
  };

  const runSession = async (f: File): Promise<ImportResult | undefined> => {
    const key = resumeKeyFor(f.name, f.size, f.lastModified);
    let s: ImportSession = await createSession(session, f.name, f.size, key);
    active.current.id = s.id;
    saveStoredSessions([
      ...loadStoredSessions().filter((x) => x.resumeKey !== key),
      { resumeKey: key, id: s.id, filename: f.name, size: f.size, savedAtMs: Date.now() },
    ]);
    if (s.received_bytes > 0 && s.status === 'uploading')
      setPhase(t('io.resuming', { bytes: formatBytes(s.received_bytes) }));
    for (const [start, end] of planChunks(
      f.size,
      s.status === 'uploading' ? s.received_bytes : f.size,
      s.chunk_size_bytes,
    )) {
      if (active.current.cancelled) return undefined;
      setPhase(t('io.uploading', { done: formatBytes(start), total: formatBytes(f.size) }));
      s = await putChunk(session, s.id, start, f.slice(start, end));
      setProgress(sessionProgress(s));
    }
    if (s.status === 'uploading' || s.status === 'ready' || (s.status === 'failed' && s.retryable))
      s = await completeSession(session, s.id);
    setPhase(t('io.processing'));
    while (s.status === 'processing' || s.status === 'ready') {
      if (active.current.cancelled) return undefined;
      setProgress(sessionProgress(s));
      await sleep(1000);
      s = await getSession(session, s.id);
    }
    saveStoredSessions(loadStoredSessions().filter((x) => x.resumeKey !== key));
    if (s.status === 'completed') return s.result;
    throw new ApiError(500, 'request_failed', s.error ?? s.status);
  };

  const doImport = async () => {
    if (!file) return;
    active.current = { id: null, cancelled: false };
    setError(undefined);
    setResult(null);
    setProgress(0);
    try {
      let r: ImportResult | undefined;
      try {
        r = await runSession(file);
      } catch (e) {
        // Servers without import sessions: single request (≤ 64 MiB).
        if (
          e instanceof ApiError &&
          (e.status === 404 || e.status === 405 || e.status === 501) &&
          !active.current.id
        ) {
          if (file.size > kLegacyImportLimitBytes)
            throw new ApiError(413, 'usage_import_session_too_large', 'file exceeds 64 MiB');
          setPhase(t('io.uploadingSingle'));
          r = await importUsageLegacy(session, file);
        } else throw e;
      }
      if (r) {
        setProgress(1);
        setResult(r);
        setPhase('');
      }
    } catch (e) {
      setError(e);
      setProgress(null);
    }
  };

  const cancel = async () => {
    active.current.cancelled = true;
    if (active.current.id) await cancelSession(session, active.current.id).catch(() => undefined);
    setProgress(null);
    setPhase(t('io.cancelled'));
  };

  const busy = progress !== null && progress < 1 && !error;
  return (
    <div class="page" data-testid="page-import-export">
      <h1>{t('nav.importExport')}</h1>
      <Card title={t('io.export')}>
        <p class="muted">{t('io.exportHint')}</p>
        <div class="toolbar">
          <Select
            label={t('io.exportRange')}
            value={scope}
            onChange={setScope}
            options={(['all', 'today', '7d', '30d', 'custom'] as ExportScope[]).map((r) => ({
              value: r,
              label: r === 'all' ? t('io.exportAll') : t(`range.${r}`),
            }))}
          />
          {scope === 'custom' && (
            <>
              <label class="field field-inline">
                <span>{t('filter.from')}</span>
                <input
                  type="datetime-local"
                  value={toLocalInput(custom.from)}
                  onChange={(e) => {
                    const v = fromLocalInput(e.currentTarget.value);
                    if (v) setCustom({ ...custom, from: v });
                  }}
                />
              </label>
              <label class="field field-inline">
                <span>{t('filter.to')}</span>
                <input
                  type="datetime-local"
                  value={toLocalInput(custom.to)}
                  onChange={(e) => {
                    const v = fromLocalInput(e.currentTarget.value);
                    if (v) setCustom({ ...custom, to: v });
                  }}
                />
              </label>
            </>
          )}
        </div>
        <button
          type="button"
          class="btn btn-primary"
          disabled={exporting}
          onClick={() => void doExport()}
        >
          {exporting ? t('common.working') : t('io.exportButton')}
        </button>
        {exported !== null && (
          <Notice tone="good">
            <span data-testid="export-count">
              {t('io.exported', { count: formatNumber(exported, lang) })}
            </span>
          </Notice>
        )}
        {exportError !== undefined && <ErrorBox error={exportError} />}
      </Card>
      <Card title={t('io.import')}>
        <p class="muted">{t('io.importHint')}</p>
        <div class="toolbar">
          <label class="field field-inline">
            <span>{t('io.file')}</span>
            <input
              type="file"
              accept=".jsonl,.ndjson,.json,application/json"
              onChange={(e) => {
                setFile(e.currentTarget.files?.[0] ?? null);
                setResult(null);
                setError(undefined);
                setProgress(null);
              }}
            />
          </label>
          <button
            type="button"
            class="btn btn-primary"
            disabled={!file || busy}
            onClick={() => void doImport()}
          >
            {t('io.importButton')}
          </button>
          {busy && (
            <button type="button" class="btn" onClick={() => void cancel()}>
              {t('common.cancel')}
            </button>
          )}
        </div>
        {file && (
          <div class="muted small">
            {file.name} · {formatBytes(file.size)}
          </div>
        )}
        {progress !== null && <Progress value={progress} label={t('io.progress')} />}
        {phase && (
          <div class="muted small" aria-live="polite">
            {phase}
          </div>
        )}
        {error !== undefined && <ErrorBox error={error} />}
        {result && (
          <Notice tone={result.failed ? 'warn' : 'good'}>
            <span class="sr-only" data-testid="import-result">
              {JSON.stringify({
                added: result.added,
                skipped: result.skipped,
                total: result.total,
              })}
            </span>
            {t('io.result', {
              added: formatNumber(result.added, lang),
              skipped: formatNumber(result.skipped, lang),
              total: formatNumber(result.total, lang),
              failed: formatNumber(result.failed, lang),
              format: result.format,
            })}
            {result.warnings?.length ? (
              <ul>
                {result.warnings.slice(0, 10).map((w) => (
                  <li key={w}>{w}</li>
                ))}
              </ul>
            ) : null}
          </Notice>
        )}
      </Card>
    </div>
  );
}
