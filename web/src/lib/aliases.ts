// Caches API-key aliases (Full Mode) so pages can label callers by `api_key_hash`.
import { useEffect, useState } from 'preact/hooks';
import { getAliases } from '../api/prices';
import type { Connection } from '../api/client';

export function useAliasMap(conn: Connection | null, enabled: boolean): Map<string, string> {
  const [map, setMap] = useState<Map<string, string>>(new Map());
  useEffect(() => {
    if (!conn || !enabled) return;
    getAliases(conn)
      .then((items) => setMap(new Map(items.map((i) => [i.apiKeyHash, i.alias]))))
      .catch(() => setMap(new Map()));
  }, [conn?.apiBase, conn?.credential, enabled]);
  return map;
}

export function callerLabel(hash: string | undefined, aliases: Map<string, string>): string {
  if (!hash) return '—';
  return aliases.get(hash) ?? `${hash.slice(0, 8)}…`;
}
