import { describe, expect, it } from 'vitest';
import {
  bucketLabel,
  formatBytes,
  formatCompact,
  formatDateTime,
  formatDuration,
  formatNumber,
  formatPercent,
  formatUsd,
} from './format';

describe('formatUsd', () => {
  it('always shows exactly three decimals', () => {
    expect(formatUsd(0)).toBe('$0.000');
    expect(formatUsd(1)).toBe('$1.000');
    expect(formatUsd(1.23456)).toBe('$1.235');
    expect(formatUsd(0.0125)).toBe('$0.013');
  });
  it('groups thousands and keeps the sign', () => {
    expect(formatUsd(1234567.891)).toBe('$1,234,567.891');
    expect(formatUsd(-2.5)).toBe('-$2.500');
  });
  it('marks tiny positive costs instead of rounding them to zero', () => {
    expect(formatUsd(0.0001)).toBe('<$0.001');
    expect(formatUsd(0.0005)).toBe('$0.001');
  });
  it('renders a dash for missing values', () => {
    expect(formatUsd(null)).toBe('—');
    expect(formatUsd(Number.NaN)).toBe('—');
  });
});

describe('number formatting', () => {
  it('compacts large numbers', () => {
    expect(formatCompact(999)).toBe('999');
    expect(formatCompact(1234)).toBe('1.23K');
    expect(formatCompact(12_345)).toBe('12.3K');
    expect(formatCompact(1_500_000)).toBe('1.5M');
    expect(formatCompact(123_456_789)).toBe('123M');
    expect(formatCompact(2_000_000_000)).toBe('2B');
  });
  it('groups by locale', () => {
    expect(formatNumber(1234567, 'en')).toBe('1,234,567');
    expect(formatNumber(1234567, 'zh-CN')).toBe('1,234,567');
    expect(formatNumber(undefined)).toBe('—');
  });
  it('formats percentages, durations and bytes', () => {
    expect(formatPercent(0.98765)).toBe('98.8%');
    expect(formatPercent(1)).toBe('100%');
    expect(formatDuration(850)).toBe('850 ms');
    expect(formatDuration(1250)).toBe('1.25 s');
    expect(formatDuration(125_000)).toBe('2m 05s');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(4 * 1024 * 1024)).toBe('4 MiB');
  });
  it('formats bytes across units with one decimal', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1024)).toBe('1 KiB');
    expect(formatBytes(12.4 * 1024 * 1024)).toBe('12.4 MiB');
    expect(formatBytes(64 * 1024 * 1024)).toBe('64 MiB');
    expect(formatBytes(3.25 * 1024 ** 3)).toBe('3.3 GiB');
    expect(formatBytes(undefined)).toBe('—');
    expect(formatBytes(Number.NaN)).toBe('—');
  });
});

describe('time-zone bucketing labels', () => {
  const ms = Date.UTC(2026, 5, 5, 23, 30); // 2026-06-05 23:30 UTC
  it('labels hour buckets HH:MM in the requested zone', () => {
    expect(bucketLabel(ms, 'hour', 'UTC')).toBe('23:30');
    expect(bucketLabel(ms, 'hour', 'Asia/Shanghai')).toBe('07:30');
    expect(bucketLabel(ms, 'hour', 'America/New_York')).toBe('19:30');
  });
  it('labels day buckets MM/DD, crossing the date line by zone', () => {
    expect(bucketLabel(ms, 'day', 'UTC')).toBe('06/05');
    expect(bucketLabel(ms, 'day', 'Asia/Shanghai')).toBe('06/06');
  });
  it('follows daylight saving time', () => {
    const winter = Date.UTC(2026, 0, 15, 12, 0);
    const summer = Date.UTC(2026, 6, 15, 12, 0);
    expect(bucketLabel(winter, 'hour', 'Europe/Berlin')).toBe('13:00');
    expect(bucketLabel(summer, 'hour', 'Europe/Berlin')).toBe('14:00');
  });
  it('prints full timestamps in a zone', () => {
    expect(formatDateTime(ms, 'Asia/Shanghai')).toBe('2026-06-06 07:30:00');
    expect(formatDateTime(0)).toBe('—');
  });
});
