// i18n: English is the source dictionary; zh-CN must have exactly the same keys (checked by
// the type system and by i18n.test.ts). Language is stored under `cli-proxy-language`.
import { en, type MessageKey } from './en';
import { zhCN } from './zh-CN';
import { createStore, safeStorage, useStore } from '../lib/store';
import type { Lang } from '../lib/format';

export type { MessageKey };
export const kDictionaries: Record<Lang, Record<MessageKey, string>> = { en, 'zh-CN': zhCN };
const kKey = 'cli-proxy-language';

function detect(): Lang {
  const saved = safeStorage.get(kKey);
  if (saved === 'en' || saved === 'zh-CN') return saved;
  const nav = typeof navigator === 'undefined' ? 'en' : navigator.language.toLowerCase();
  return nav.startsWith('zh') ? 'zh-CN' : 'en';
}

export const langStore = createStore<Lang>(detect());

export function setLang(lang: Lang): void {
  safeStorage.set(kKey, lang);
  langStore.set(lang);
  if (typeof document !== 'undefined') document.documentElement.lang = lang;
}

export type Params = Record<string, string | number>;

export function translate(lang: Lang, key: MessageKey, params?: Params): string {
  let s = kDictionaries[lang][key] ?? en[key] ?? key;
  if (params) for (const [k, v] of Object.entries(params)) s = s.split(`{${k}}`).join(String(v));
  return s;
}

export function t(key: MessageKey, params?: Params): string {
  return translate(langStore.get(), key, params);
}

/** Re-renders the component on language change; returns the translate function. */
export function useT(): (key: MessageKey, params?: Params) => string {
  const lang = useStore(langStore);
  return (key, params) => translate(lang, key, params);
}
