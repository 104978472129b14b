import { describe, expect, it } from 'vitest';
import { en } from './en';
import { zhCN } from './zh-CN';
import { translate } from './index';

const placeholders = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

describe('i18n key parity', () => {
  it('zh-CN has exactly the English keys', () => {
    expect(Object.keys(zhCN).sort()).toEqual(Object.keys(en).sort());
  });
  it('every translation is non-empty and keeps the same placeholders', () => {
    for (const [key, value] of Object.entries(en)) {
      const zh = zhCN[key as keyof typeof en];
      expect(zh.trim(), key).not.toBe('');
      expect(placeholders(zh), key).toEqual(placeholders(value));
    }
  });
  it('substitutes parameters', () => {
    expect(translate('en', 'config.days', { n: 30 })).toBe('30 days');
    expect(translate('zh-CN', 'config.days', { n: 30 })).toBe('30 天');
  });
});
