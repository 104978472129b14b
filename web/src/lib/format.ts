// Number, cost, byte, duration and time-bucket formatting shared by every page.
// All functions are pure; locale and time zone are explicit parameters so tests are stable.

export type Lang = 'en' | 'zh-CN';

const kDash = '—';

function finite(v: number | null | undefined): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/** Integer or decimal with locale grouping: 1234567 → "1,234,567". */
export function formatNumber(v: number | null | undefined, lang: Lang = 'en'): string {
  if (!finite(v)) return kDash;
  return new Intl.NumberFormat(lang, { maximumFractionDigits: 2 }).format(v);
}

/** Compact form for cards: 1234 → "1.23K", 1234567 → "1.23M" (English suffixes in every locale). */
export function formatCompact(v: number | null | undefined): string {
  if (!finite(v)) return kDash;
  const abs = Math.abs(v);
  const units: [number, string][] = [
    [1e12, 'T'],
    [1e9, 'B'],
    [1e6, 'M'],
    [1e3, 'K'],
  ];
  for (const [size, suffix] of units) {
    if (abs >= size) {
      const scaled = v / size;
      const digits = Math.abs(scaled) >= 100 ? 0 : Math.abs(scaled) >= 10 ? 1 : 2;
      return `${trimZeros(scaled.toFixed(digits))}${suffix}`;
    }
  }
  return Number.isInteger(v) ? String(v) : trimZeros(v.toFixed(2));
}

function trimZeros(s: string): string {
  return s.includes('.') ? s.replace(/\.?0+$/, '') : s;
}

/** USD with exactly 3 decimals; tiny positive amounts show as "<$0.001". */
export function formatUsd(v: number | null | undefined): string {
  if (!finite(v)) return kDash;
  if (v > 0 && v < 0.0005) return '<$0.001';
  const sign = v < 0 ? '-' : '';
  const fixed = Math.abs(v).toFixed(3);
  const [int = '0', frac = '000'] = fixed.split('.');
  return `${sign}$${int.replace(/\B(?=(\d{3})+(?!\d))/g, ',')}.${frac}`;
}

/** Ratio in [0,1] → "98.7%". */
export function formatPercent(ratio: number | null | undefined, digits = 1): string {
  if (!finite(ratio)) return kDash;
  return `${trimZeros((ratio * 100).toFixed(digits))}%`;
}

/** Milliseconds → "850 ms", "1.25 s", "2m 05s". */
export function formatDuration(ms: number | null | undefined): string {
  if (!finite(ms)) return kDash;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${trimZeros((ms / 1000).toFixed(2))} s`;
  const totalSec = Math.round(ms / 1000);
  const m = Math.floor(totalSec / 60);
  const s = totalSec % 60;
  if (m < 60) return `${m}m ${String(s).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

/** Bytes → "1.5 MiB". */
export function formatBytes(bytes: number | null | undefined): string {
  if (!finite(bytes)) return kDash;
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${trimZeros(v.toFixed(1))} ${units[i]}`;
}

function parts(ms: number, timeZone: string | undefined): Record<string, string> {
  const fmt = new Intl.DateTimeFormat('en-US', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23',
  });
  const out: Record<string, string> = {};
  for (const p of fmt.formatToParts(new Date(ms))) out[p.type] = p.value;
  return out;
}

/** Label of a time bucket in a zone, matching the server: hour → "HH:MM", day → "MM/DD". */
export function bucketLabel(ms: number, granularity: 'hour' | 'day', timeZone?: string): string {
  const p = parts(ms, timeZone);
  return granularity === 'hour' ? `${p.hour}:${p.minute}` : `${p.month}/${p.day}`;
}

/** Full timestamp "YYYY-MM-DD HH:MM:SS" in the zone (browser zone when omitted). */
export function formatDateTime(ms: number | null | undefined, timeZone?: string): string {
  if (!finite(ms) || ms <= 0) return kDash;
  const p = parts(ms, timeZone);
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
}

/** Start of the local calendar day containing `nowMs`, in the browser's zone. */
export function localDayStart(nowMs: number): number {
  const d = new Date(nowMs);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

/** The browser's IANA zone, or UTC when unknown. */
export function browserTimeZone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
}

/** "3 min ago" style relative time (English/Chinese). */
export function formatRelative(ms: number | null | undefined, nowMs: number, lang: Lang): string {
  if (!finite(ms) || ms <= 0) return kDash;
  const sec = Math.round((nowMs - ms) / 1000);
  const rtf = new Intl.RelativeTimeFormat(lang, { numeric: 'auto' });
  if (Math.abs(sec) < 60) return rtf.format(-sec, 'second');
  if (Math.abs(sec) < 3600) return rtf.format(-Math.round(sec / 60), 'minute');
  if (Math.abs(sec) < 86400) return rtf.format(-Math.round(sec / 3600), 'hour');
  return rtf.format(-Math.round(sec / 86400), 'day');
}

/** Masks a secret for display: keeps 4 leading and 4 trailing characters. */
export function maskSecret(s: string | null | undefined): string {
  if (!s) return kDash;
  if (s.length <= 10) return `${s.slice(0, 2)}…`;
  return `${s.slice(0, 4)}…${s.slice(-4)}`;
}
