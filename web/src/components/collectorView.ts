// Pure model of the collector card (Collector.tsx): turns GET /status into the facts and
// notices to show, so the card is testable without a DOM. Fields the server does not send
// (older servers) produce no fact rather than a row of dashes.
import type { MessageKey, Params } from '../i18n';
import type { ServerStatus } from '../api/manager';
import {
  formatBytes,
  formatDateTime,
  formatDuration,
  formatNumber,
  formatPercent,
  formatRelative,
  type Lang,
} from '../lib/format';

export type Translate = (key: MessageKey, params?: Params) => string;

export interface CollectorMeter {
  /** Fill in [0, 1]. */
  ratio: number;
  tone: 'info' | 'warn' | 'bad';
}

export interface CollectorFact {
  /** Stable id (row key and data-testid suffix). */
  id: string;
  label: string;
  value: string;
  /** Tooltip: exact timestamp, configured bounds... */
  title?: string;
  /** Extra class on the value (e.g. "break" for long URLs). */
  class?: string;
  meter?: CollectorMeter;
}

export interface CollectorNotice {
  id: string;
  tone: 'info' | 'warn' | 'error';
  title?: string;
  lines: string[];
  testId?: string;
}

export interface CollectorView {
  state: string;
  tone: string;
  facts: CollectorFact[];
  notices: CollectorNotice[];
}

export function collectorTone(state: string | undefined): string {
  if (state === 'running') return 'good';
  if (state === 'starting') return 'warn';
  if (state === 'error') return 'bad';
  return 'empty';
}

const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const pos = (v: unknown): v is number => num(v) && v > 0;

/** Fill of the write buffer: the larger of records/max and bytes/max (whichever bound is set). */
export function backlogRatio(c: NonNullable<ServerStatus['collector']>): number | undefined {
  const ratios: number[] = [];
  if (num(c.backlogRecords) && pos(c.backlogMaxRecords))
    ratios.push(c.backlogRecords / c.backlogMaxRecords);
  if (num(c.backlogBytes) && pos(c.backlogMaxBytes))
    ratios.push(c.backlogBytes / c.backlogMaxBytes);
  if (ratios.length === 0) return undefined;
  return Math.max(0, Math.min(1, Math.max(...ratios)));
}

/** "37%", or "<1%" for a non-empty buffer that would round to zero. */
export function formatFill(ratio: number): string {
  if (ratio > 0 && ratio < 0.01) return '<1%';
  return formatPercent(ratio, 0);
}

function transportLabel(t: string | undefined): string {
  return t ? t.toUpperCase() : '';
}

export function collectorView(
  status: ServerStatus,
  nowMs: number,
  lang: Lang,
  t: Translate,
): CollectorView {
  const c = status.collector;
  const n = (v: number | undefined) => formatNumber(v, lang);
  const state = c?.collector ?? t('collector.unknown');
  const facts: CollectorFact[] = [
    {
      id: 'mode',
      label: t('collector.mode'),
      value: `${c?.mode || '—'} / ${c?.transport || '—'}`,
    },
    { id: 'queue', label: t('collector.queue'), value: c?.queue || '—' },
    { id: 'upstream', label: t('collector.upstream'), value: c?.upstream || '—', class: 'break' },
    { id: 'events', label: t('collector.events'), value: n(status.events) },
    { id: 'deadLetters', label: t('collector.deadLetters'), value: n(status.deadLetters) },
    {
      id: 'lastConsumed',
      label: t('collector.lastConsumed'),
      value: formatRelative(c?.lastConsumedAt, nowMs, lang),
      title: formatDateTime(c?.lastConsumedAt),
    },
    {
      id: 'lastInserted',
      label: t('collector.lastInserted'),
      value: formatRelative(c?.lastInsertedAt, nowMs, lang),
      title: formatDateTime(c?.lastInsertedAt),
    },
    {
      id: 'inserted',
      label: t('collector.inserted'),
      value: `${n(c?.totalInserted)} / ${t('collector.skipped')} ${n(c?.totalSkipped)}`,
    },
  ];
  const notices: CollectorNotice[] = [];

  if (c && num(c.eventsPerSecond)) {
    facts.push({
      id: 'rate',
      label: t('collector.rate'),
      value: t('collector.rateValue', { rate: n(c.eventsPerSecond) }),
    });
  }
  if (c && num(c.reconnects)) {
    facts.push({ id: 'reconnects', label: t('collector.reconnects'), value: n(c.reconnects) });
  }

  if (c && (num(c.backlogRecords) || num(c.backlogBytes))) {
    const ratio = backlogRatio(c);
    const records = n(c.backlogRecords ?? 0);
    const bytes = formatBytes(c.backlogBytes ?? 0);
    let value = pos(c.backlogMaxBytes)
      ? t('collector.backlogValue', { records, bytes, max: formatBytes(c.backlogMaxBytes) })
      : t('collector.backlogValueNoMax', { records, bytes });
    const busy = pos(c.backlogRecords) || pos(c.backlogBytes);
    if (ratio !== undefined && busy) value += ` · ${formatFill(ratio)}`;
    const fact: CollectorFact = { id: 'backlog', label: t('collector.backlog'), value };
    if (pos(c.backlogMaxRecords) || pos(c.backlogMaxBytes)) {
      fact.title = t('collector.backlogBounds', {
        records: n(c.backlogMaxRecords),
        bytes: formatBytes(c.backlogMaxBytes),
      });
    }
    if (ratio !== undefined && (busy || c.readerStalled)) {
      fact.meter = {
        ratio,
        tone: c.readerStalled || ratio >= 0.9 ? 'bad' : ratio >= 0.5 ? 'warn' : 'info',
      };
    }
    facts.push(fact);
  }

  if (c && pos(c.readerStalls)) {
    facts.push({
      id: 'readerStalls',
      label: t('collector.readerStalls'),
      value: t('collector.readerStallsValue', {
        n: n(c.readerStalls),
        duration: formatDuration(c.readerStallMs ?? 0),
      }),
    });
  }

  if (c && (pos(c.subscriberDrops) || pos(c.lastSubscriberDropAt))) {
    const parts = [n(c.subscriberDrops ?? 0)];
    if (pos(c.overflowDrops)) parts.push(t('collector.dropsOverflow', { n: n(c.overflowDrops) }));
    if (pos(c.lastSubscriberDropAt)) {
      parts.push(
        t('collector.dropsLast', { when: formatRelative(c.lastSubscriberDropAt, nowMs, lang) }),
      );
    }
    parts.push(t('collector.dropsDrained', { n: n(c.drainedRecords ?? 0) }));
    const fact: CollectorFact = {
      id: 'drops',
      label: t('collector.drops'),
      value: parts.join(' · '),
    };
    if (pos(c.lastSubscriberDropAt)) fact.title = formatDateTime(c.lastSubscriberDropAt);
    facts.push(fact);
  }

  if (c && pos(c.lastDrainAt)) {
    const when = formatRelative(c.lastDrainAt, nowMs, lang);
    const via = transportLabel(c.drainTransport);
    facts.push({
      id: 'lastDrain',
      label: t('collector.lastDrain'),
      value: via ? t('collector.lastDrainVia', { when, transport: via }) : when,
      title: formatDateTime(c.lastDrainAt),
    });
  }

  if (c?.readerStalled) {
    notices.push({
      id: 'stalled',
      tone: 'warn',
      testId: 'collector-stalled',
      title: t('collector.stalledTitle'),
      lines: [
        t('collector.stalledBody', {
          records: n(c.backlogRecords ?? 0),
          bytes: formatBytes(c.backlogBytes ?? 0),
        }),
      ],
    });
  }

  if (c && pos(c.estimatedLost)) {
    const lines: string[] = [];
    if (pos(c.overflowDrops)) lines.push(t('collector.lostOverflow', { n: n(c.overflowDrops) }));
    if (pos(c.undrainedGaps)) lines.push(t('collector.lostGaps', { n: n(c.undrainedGaps) }));
    lines.push(t('collector.lostMeaning'));
    lines.push(t('collector.lostDocs'));
    notices.push({
      id: 'lost',
      tone: 'warn',
      testId: 'collector-lost',
      title: t('collector.lostTitle', { n: n(c.estimatedLost) }),
      lines,
    });
  }

  if (c?.lastError && (status.events ?? 0) > 0) {
    notices.push({
      id: 'lastError',
      tone: 'error',
      lines: [t('collector.lastError', { error: c.lastError })],
    });
  }

  if (!status.events) {
    notices.push({
      id: 'empty',
      tone: c?.collector === 'running' ? 'info' : 'warn',
      testId: 'collector-empty',
      title: t('collector.emptyTitle'),
      lines: [
        c?.lastError
          ? t('collector.emptyError', { error: c.lastError })
          : c?.collector === 'running' || c?.collector === 'starting'
            ? t('collector.emptyRunning')
            : t('collector.emptyStopped', { state: c?.collector ?? t('collector.unknown') }),
      ],
    });
  }

  return { state, tone: collectorTone(c?.collector), facts, notices };
}
