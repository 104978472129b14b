// Login session: mode, API base and credential. Stored under `cli-proxy-auth` in localStorage
// when "remember" is ticked, else in sessionStorage (gone with the tab). Not a security
// boundary: anyone with access to the browser profile can read it.
import { createStore, safeStorage, useStore } from './store';
import { onUnauthorized, type Connection } from '../api/client';

export type SessionMode = 'manager_embedded' | 'external_panel';

export interface Session extends Connection {
  mode: SessionMode;
  panelBase: string;
  remember: boolean;
  /** Logged in through the manager-config fallback (CPA unreachable or wrong key). */
  recovery?: boolean;
}

const kKey = 'cli-proxy-auth';

export function currentPanelBase(): string {
  return typeof location === 'undefined' ? '' : `${location.origin}${location.pathname}`;
}

function load(): Session | null {
  const raw = safeStorage.get(kKey, globalThis.sessionStorage) ?? safeStorage.get(kKey);
  if (!raw) return null;
  try {
    const s = JSON.parse(raw) as Session;
    if (!s.credential || !s.apiBase || s.panelBase !== currentPanelBase()) return null;
    return s;
  } catch {
    return null;
  }
}

export const sessionStore = createStore<Session | null>(load());

export function saveSession(s: Session): void {
  safeStorage.remove(kKey);
  safeStorage.remove(kKey, globalThis.sessionStorage);
  safeStorage.set(
    kKey,
    JSON.stringify(s),
    s.remember ? globalThis.localStorage : globalThis.sessionStorage,
  );
  sessionStore.set(s);
}

export function logout(): void {
  safeStorage.remove(kKey);
  safeStorage.remove(kKey, globalThis.sessionStorage);
  sessionStore.set(null);
}

/** Wipes everything the panel stored in this browser. */
export function clearLoginStorage(): void {
  for (const area of [globalThis.localStorage, globalThis.sessionStorage]) {
    try {
      const keys: string[] = [];
      for (let i = 0; i < area.length; i++) {
        const k = area.key(i);
        if (k && (k.startsWith('cli-proxy') || k.startsWith('cpa-') || k.includes('uiState')))
          keys.push(k);
      }
      keys.forEach((k) => area.removeItem(k));
    } catch {
      // Ignore.
    }
  }
  sessionStore.set(null);
}

onUnauthorized(() => {
  if (sessionStore.get()) logout();
});

/** The origin the panel was served from: the default API base. */
export function defaultApiBase(): string {
  return typeof location === 'undefined' ? '' : location.origin;
}

/** Accepts `host:port`, a full URL, or one with a `/v0/management` suffix. */
export function normalizeApiBase(input: string): string {
  let s = input.trim();
  if (!s) return defaultApiBase();
  if (!/^https?:\/\//i.test(s)) s = `http://${s}`;
  s = s.replace(/\/+$/, '');
  s = s.replace(/\/v0\/management$/i, '').replace(/\/v0$/i, '');
  return s;
}

const kSignedOut: Session = {
  apiBase: '',
  credential: '',
  mode: 'external_panel',
  panelBase: '',
  remember: false,
};

/** The current session inside the signed-in shell (a harmless empty one during logout). */
export function useSession(): Session {
  return useStore(sessionStore) ?? kSignedOut;
}
