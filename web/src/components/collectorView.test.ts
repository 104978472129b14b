import { describe, expect, it } from 'vitest';
import { translate, type MessageKey, type Params } from '../i18n';
import type { CollectorStatus, ServerStatus } from '../api/manager';
import type { Lang } from '../lib/format';
import {
  backlogRatio,
  collectorTone,
  collectorView,
  formatFill,
  type CollectorView,
} from './collectorView';

const kNow = Date.UTC(2026, 5, 5, 12, 0, 0);
const kMiB = 1024 * 1024;
const tr = (lang: Lang) => (key: MessageKey, params?: Params) => translate(lang, key, params);

function view(collector: Partial<CollectorStatus> | undefined, extra: Partial<ServerStatus> = {}) {
  const status: ServerStatus = {
    service: 'cpa-manager-plus',
    events: 10,
    deadLetters: 0,
    ...extra,
    collector: collector && { collector: 'running', ...collector },
  };
  return collectorView(status, kNow, 'en', tr('en'));
}
const fact = (v: CollectorView, id: string) => v.facts.find((f) => f.id === id);
const notice = (v: CollectorView, id: string) => v.notices.find((n) => n.id === id);
const ids = (v: CollectorView) => v.facts.map((f) => f.id);

// What a server of this version sends while idle and healthy.
const kHealthy: Partial<CollectorStatus> = {
  mode: 'auto',
  transport: 'subscribe',
  queue: 'usage',
  eventsPerSecond: 12.5,
  reconnects: 0,
  subscriberDrops: 0,
  lastSubscriberDropAt: 0,
  overflowDrops: 0,
  drainedRecords: 0,
  lastDrainAt: 0,
  drainTransport: '',
  backlogRecords: 0,
  backlogBytes: 0,
  backlogMaxRecords: 50_000,
  backlogMaxBytes: 64 * kMiB,
  readerStalled: false,
  readerStalls: 0,
  readerStallMs: 0,
  estimatedLost: 0,
  undrainedGaps: 0,
};

describe('collectorTone', () => {
  it('maps the collector state to a badge tone', () => {
    expect(collectorTone('running')).toBe('good');
    expect(collectorTone('starting')).toBe('warn');
    expect(collectorTone('error')).toBe('bad');
    expect(collectorTone(undefined)).toBe('empty');
  });
});

describe('collectorView: older servers', () => {
  it('shows only the original facts and no new rows when the fields are absent', () => {
    const v = view({ mode: 'auto', transport: 'http', totalInserted: 5, totalSkipped: 1 });
    expect(ids(v)).toEqual([
      'mode',
      'queue',
      'upstream',
      'events',
      'deadLetters',
      'lastConsumed',
      'lastInserted',
      'inserted',
    ]);
    expect(fact(v, 'mode')?.value).toBe('auto / http');
    expect(fact(v, 'inserted')?.value).toBe('5 / skipped 1');
    expect(v.notices).toEqual([]);
  });
  it('copes with no collector object at all', () => {
    const v = view(undefined, { events: 0 });
    expect(v.state).toBe('unknown');
    expect(v.tone).toBe('empty');
    expect(notice(v, 'empty')?.tone).toBe('warn');
  });
});

describe('collectorView: healthy new server', () => {
  const v = view(kHealthy);
  it('shows throughput, reconnects and an empty backlog with its bound', () => {
    expect(fact(v, 'rate')?.value).toBe('12.5 events/s');
    expect(fact(v, 'reconnects')?.value).toBe('0');
    const b = fact(v, 'backlog');
    expect(b?.value).toBe('0 records · 0 B of max 64 MiB');
    expect(b?.meter).toBeUndefined();
    expect(b?.title).toContain('50,000 records or 64 MiB');
  });
  it('hides drops, drains and stalls that never happened, and raises no notice', () => {
    expect(fact(v, 'drops')).toBeUndefined();
    expect(fact(v, 'lastDrain')).toBeUndefined();
    expect(fact(v, 'readerStalls')).toBeUndefined();
    expect(v.notices).toEqual([]);
  });
});

describe('collectorView: backlog', () => {
  it('shows records, bytes, the bound and the fill with a meter', () => {
    const v = view({ ...kHealthy, backlogRecords: 1234, backlogBytes: 16 * kMiB });
    const b = fact(v, 'backlog');
    expect(b?.value).toBe('1,234 records · 16 MiB of max 64 MiB · 25%');
    expect(b?.meter).toEqual({ ratio: 0.25, tone: 'info' });
  });
  it('uses whichever bound is closer to full and colours the meter', () => {
    const v = view({ ...kHealthy, backlogRecords: 40_000, backlogBytes: 8 * kMiB });
    expect(fact(v, 'backlog')?.meter).toEqual({ ratio: 0.8, tone: 'warn' });
    const full = view({ ...kHealthy, backlogRecords: 49_000, backlogBytes: 8 * kMiB });
    expect(fact(full, 'backlog')?.meter?.tone).toBe('bad');
  });
  it('marks a tiny backlog as <1% rather than 0%', () => {
    const v = view({ ...kHealthy, backlogRecords: 3, backlogBytes: 2048 });
    expect(fact(v, 'backlog')?.value).toBe('3 records · 2 KiB of max 64 MiB · <1%');
  });
  it('omits "of max" when the server does not report the bound', () => {
    const v = view({ backlogRecords: 7, backlogBytes: 1536 });
    expect(fact(v, 'backlog')?.value).toBe('7 records · 1.5 KiB');
    expect(fact(v, 'backlog')?.meter).toBeUndefined();
  });
  it('computes the ratio from the set bounds only, clamped to [0, 1]', () => {
    expect(backlogRatio({ collector: 'running' })).toBeUndefined();
    expect(backlogRatio({ collector: 'running', backlogRecords: 5, backlogMaxRecords: 10 })).toBe(
      0.5,
    );
    expect(
      backlogRatio({
        collector: 'running',
        backlogRecords: 12,
        backlogMaxRecords: 10,
        backlogBytes: 1,
        backlogMaxBytes: 100,
      }),
    ).toBe(1);
  });
  it('formats the fill', () => {
    expect(formatFill(0)).toBe('0%');
    expect(formatFill(0.004)).toBe('<1%');
    expect(formatFill(0.374)).toBe('37%');
    expect(formatFill(1)).toBe('100%');
  });
});

describe('collectorView: reader stalled', () => {
  const v = view({
    ...kHealthy,
    backlogRecords: 50_000,
    backlogBytes: 30 * kMiB,
    readerStalled: true,
    readerStalls: 3,
    readerStallMs: 4200,
  });
  it('warns that CPA may drop the subscription', () => {
    const n = notice(v, 'stalled');
    expect(n?.tone).toBe('warn');
    expect(n?.testId).toBe('collector-stalled');
    expect(n?.title).toBe(
      'Reader stalled: the write buffer is full; CPA may drop the subscription',
    );
    expect(n?.lines[0]).toContain('50,000 records (30 MiB)');
  });
  it('shows a full red meter and the stall count and total time', () => {
    expect(fact(v, 'backlog')?.meter).toEqual({ ratio: 1, tone: 'bad' });
    expect(fact(v, 'readerStalls')?.value).toBe('3 · 4.2 s in total');
  });
});

describe('collectorView: subscriber drops and drains', () => {
  const dropAt = kNow - 5 * 60_000;
  const v = view({
    ...kHealthy,
    subscriberDrops: 4,
    overflowDrops: 1,
    lastSubscriberDropAt: dropAt,
    drainedRecords: 1200,
    lastDrainAt: kNow - 30_000,
    drainTransport: 'resp',
  });
  it('shows the count, the overflow share, when the last one was and what was drained', () => {
    const d = fact(v, 'drops');
    expect(d?.label).toBe('Subscriber drops');
    expect(d?.value).toBe('4 · 1 overflow · last 5 minutes ago · drained 1,200');
    expect(d?.title).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
  });
  it('shows the last drain and its transport', () => {
    expect(fact(v, 'lastDrain')?.value).toBe('30 seconds ago via RESP');
  });
  it('shows a plain drop without the overflow part', () => {
    const plain = view({ ...kHealthy, subscriberDrops: 1, lastSubscriberDropAt: dropAt });
    expect(fact(plain, 'drops')?.value).toBe('1 · last 5 minutes ago · drained 0');
  });
  it('shows drains without a transport as a bare time', () => {
    const bare = view({ ...kHealthy, lastDrainAt: kNow - 30_000 });
    expect(fact(bare, 'lastDrain')?.value).toBe('30 seconds ago');
  });
});

describe('collectorView: estimated loss', () => {
  it('explains the loss and points to the docs', () => {
    const v = view({
      ...kHealthy,
      subscriberDrops: 2,
      overflowDrops: 2,
      estimatedLost: 3,
      undrainedGaps: 1,
    });
    const n = notice(v, 'lost');
    expect(n?.tone).toBe('warn');
    expect(n?.testId).toBe('collector-lost');
    expect(n?.title).toBe('Estimated usage records that never reached the collector: 3');
    expect(n?.lines[0]).toContain('overflow: 2.');
    expect(n?.lines[0]).toContain('256 messages');
    expect(n?.lines[1]).toContain('could not be drained: 1.');
    expect(n?.lines.at(-1)).toContain('docs/operations.md');
    expect(n?.lines.at(-1)).toContain('Collector: bursts and drops');
  });
  it('leaves out the parts that did not happen', () => {
    const v = view({ ...kHealthy, estimatedLost: 1, undrainedGaps: 1 });
    const lines = notice(v, 'lost')?.lines ?? [];
    expect(lines).toHaveLength(3);
    expect(lines[0]).toContain('Subscription gaps');
  });
  it('orders notices: stalled, lost, then the last error', () => {
    const v = view({ ...kHealthy, readerStalled: true, estimatedLost: 1, lastError: 'boom' });
    expect(v.notices.map((n) => n.id)).toEqual(['stalled', 'lost', 'lastError']);
  });
});

describe('collectorView: existing notices', () => {
  it('shows the last error only once events exist', () => {
    expect(notice(view({ lastError: 'boom' }), 'lastError')?.lines).toEqual(['Last error: boom']);
    const empty = view({ lastError: 'boom' }, { events: 0 });
    expect(notice(empty, 'lastError')).toBeUndefined();
    expect(notice(empty, 'empty')?.lines[0]).toContain('cannot read the CPA usage queue: boom');
  });
  it('explains an empty store by state', () => {
    expect(notice(view({}, { events: 0 }), 'empty')?.tone).toBe('info');
    const stopped = notice(view({ collector: 'stopped' }, { events: 0 }), 'empty');
    expect(stopped?.tone).toBe('warn');
    expect(stopped?.lines[0]).toContain('(stopped)');
  });
});

describe('collectorView: Chinese', () => {
  it('renders the new facts and notices from the zh-CN dictionary', () => {
    const status: ServerStatus = {
      service: 'cpa-manager-plus',
      events: 1,
      collector: {
        collector: 'running',
        ...kHealthy,
        backlogRecords: 10,
        backlogBytes: 2048,
        subscriberDrops: 1,
        lastSubscriberDropAt: kNow - 60_000,
        drainedRecords: 5,
        readerStalled: true,
        estimatedLost: 1,
        overflowDrops: 1,
      },
    };
    const v = collectorView(status, kNow, 'zh-CN', tr('zh-CN'));
    expect(fact(v, 'backlog')?.value).toBe('10 条记录 · 2 KiB，上限 64 MiB · <1%');
    expect(fact(v, 'drops')?.value).toContain('已补取 5 条');
    expect(notice(v, 'stalled')?.title).toContain('读取已停顿');
    expect(notice(v, 'lost')?.title).toBe('估计有 1 条用量记录未能到达采集器');
  });
});
