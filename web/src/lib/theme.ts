// Light / dark / auto theme, stored under `cli-proxy-theme`; applied as data-theme on <html>.
import { createStore, safeStorage } from './store';

export type ThemeChoice = 'auto' | 'light' | 'dark';
const kKey = 'cli-proxy-theme';

function initial(): ThemeChoice {
  const v = safeStorage.get(kKey);
  if (v === 'dark' || v === 'auto') return v;
  if (v === 'light' || v === 'white') return 'light';
  return 'auto';
}

export const themeStore = createStore<ThemeChoice>(initial());
export const resolvedThemeStore = createStore<'light' | 'dark'>('light');

function media(): MediaQueryList | null {
  return typeof matchMedia === 'function' ? matchMedia('(prefers-color-scheme: dark)') : null;
}

function apply(): void {
  const choice = themeStore.get();
  const resolved = choice === 'auto' ? (media()?.matches ? 'dark' : 'light') : choice;
  document.documentElement.dataset['theme'] = resolved;
  if (resolvedThemeStore.get() !== resolved) resolvedThemeStore.set(resolved);
}

export function setTheme(choice: ThemeChoice): void {
  safeStorage.set(kKey, choice);
  themeStore.set(choice);
  apply();
}

export function initTheme(): void {
  apply();
  media()?.addEventListener('change', apply);
}
