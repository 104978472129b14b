// Time-range presets for Monitoring and Usage Analytics, resolved against "now".

export type MonitoringRange = 'today' | '7d' | '14d' | '30d' | 'all' | 'custom';
export type AnalyticsRange = '24h' | 'today' | 'yesterday' | '7d' | '30d' | 'custom';

const kDay = 86_400_000;

function startOfDay(ms: number): number {
  const d = new Date(ms);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

/** Resolves a preset to a half-open [from, to) window. `all` starts at 2020-01-01. */
export function resolveRange(
  range: MonitoringRange | AnalyticsRange,
  nowMs: number,
  custom?: { from: number; to: number },
): { from: number; to: number } {
  const to = nowMs + 1;
  switch (range) {
    case 'today':
      return { from: startOfDay(nowMs), to };
    case '24h':
      return { from: nowMs - kDay, to };
    case 'yesterday': {
      const today = startOfDay(nowMs);
      return { from: startOfDay(today - 1), to: today };
    }
    case '7d':
      return { from: startOfDay(nowMs) - 6 * kDay, to };
    case '14d':
      return { from: startOfDay(nowMs) - 13 * kDay, to };
    case '30d':
      return { from: startOfDay(nowMs) - 29 * kDay, to };
    case 'all':
      return { from: Date.UTC(2020, 0, 1), to };
    case 'custom':
      if (custom && custom.from < custom.to) return custom;
      return { from: startOfDay(nowMs), to };
  }
}

/** `yyyy-MM-ddTHH:mm` for <input type="datetime-local"> in the browser zone. */
export function toLocalInput(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

export function fromLocalInput(s: string): number | null {
  const v = new Date(s).getTime();
  return Number.isFinite(v) ? v : null;
}
