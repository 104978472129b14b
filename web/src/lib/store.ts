// Tiny observable store + hook; the app keeps session, language and theme in such stores.
import { useEffect, useState } from 'preact/hooks';

export interface Store<T> {
  get(): T;
  set(next: T): void;
  subscribe(fn: (v: T) => void): () => void;
}

export function createStore<T>(initial: T): Store<T> {
  let value = initial;
  const subs = new Set<(v: T) => void>();
  return {
    get: () => value,
    set(next) {
      value = next;
      subs.forEach((fn) => fn(value));
    },
    subscribe(fn) {
      subs.add(fn);
      return () => subs.delete(fn);
    },
  };
}

export function useStore<T>(store: Store<T>): T {
  const [v, setV] = useState(store.get());
  useEffect(() => {
    setV(store.get());
    return store.subscribe(setV);
  }, [store]);
  return v;
}

/** localStorage access that never throws (private mode, quota, disabled storage). */
export const safeStorage = {
  get(key: string, area: Storage | undefined = globalThis.localStorage): string | null {
    try {
      return area?.getItem(key) ?? null;
    } catch {
      return null;
    }
  },
  set(key: string, value: string, area: Storage | undefined = globalThis.localStorage): void {
    try {
      area?.setItem(key, value);
    } catch {
      // Storage unavailable: the setting lasts for this page only.
    }
  },
  remove(key: string, area: Storage | undefined = globalThis.localStorage): void {
    try {
      area?.removeItem(key);
    } catch {
      // Ignore.
    }
  },
};
