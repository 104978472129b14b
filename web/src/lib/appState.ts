// App-wide state: mode detection result, feature availability, refresh tick, CPA version.
import { createStore } from './store';
import { getInfo, getManagerConfig, isManagerService, type UsageServiceInfo } from '../api/manager';
import { defaultApiBase, type Session } from './session';
import { onServerVersion, type ServerVersion } from '../api/client';

export interface ModeState {
  loading: boolean;
  info: UsageServiceInfo | null;
  manager: boolean;
}

export const modeStore = createStore<ModeState>({ loading: true, info: null, manager: false });

/** GET /usage-service/info on the panel's own origin; failure means pure CPA panel mode. */
export async function detectMode(): Promise<ModeState> {
  let info: UsageServiceInfo | null;
  try {
    info = await getInfo({ apiBase: defaultApiBase(), credential: '' });
  } catch {
    info = null;
  }
  const state = { loading: false, info, manager: isManagerService(info) };
  modeStore.set(state);
  return state;
}

export type FeatureReason =
  | 'checking'
  | 'available'
  | 'service_not_configured'
  | 'service_unavailable'
  | 'monitoring_disabled';

export interface Features {
  manager: boolean;
  monitoring: FeatureReason;
}

export const featuresStore = createStore<Features>({ manager: false, monitoring: 'checking' });

/** Computes feature flags for a session (cpamp A.1 `usePanelFeatureAvailability`). */
export async function computeFeatures(session: Session | null): Promise<void> {
  if (!session || session.mode !== 'manager_embedded') {
    featuresStore.set({ manager: false, monitoring: 'service_unavailable' });
    return;
  }
  featuresStore.set({ manager: true, monitoring: 'checking' });
  try {
    const r = await getManagerConfig(session);
    const conn = r.config.cpaConnection;
    let monitoring: FeatureReason = 'available';
    if (!conn?.cpaBaseUrl || !conn.managementKey) monitoring = 'service_not_configured';
    else if (r.config.collector?.enabled === false) monitoring = 'monitoring_disabled';
    featuresStore.set({ manager: true, monitoring });
  } catch {
    featuresStore.set({ manager: true, monitoring: 'service_unavailable' });
  }
}

export const refreshStore = createStore(0);
export const triggerRefresh = () => refreshStore.set(refreshStore.get() + 1);

export const cpaVersionStore = createStore<ServerVersion>({});
onServerVersion((v) => {
  const cur = cpaVersionStore.get();
  if (cur.version !== v.version || cur.buildDate !== v.buildDate) cpaVersionStore.set(v);
});

declare const __APP_VERSION__: string;
export const kPanelVersion: string = typeof __APP_VERSION__ === 'string' ? __APP_VERSION__ : 'dev';
