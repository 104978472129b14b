// Manager Server endpoints: info, setup, manager config, status (cpamp-api.md §3, §4.3, §6).
import { request, type Connection } from './client';

export const kManagerServiceIds = ['cpa-manager-plus', 'cpa-manager', 'cpa-usage-service'];

export interface UsageServiceInfo {
  service?: string;
  mode?: string;
  startedAt?: number;
  configured?: boolean;
  adminReady?: boolean;
  projectInitialized?: boolean;
  setupRequired?: boolean;
  migrationStatus?: 'fresh' | 'needs_setup' | 'ready' | 'migrated' | string;
  dataKeyReady?: boolean;
  hasHistoricalData?: boolean;
}

export function isManagerService(info: UsageServiceInfo | null | undefined): boolean {
  return !!info && typeof info.service === 'string' && kManagerServiceIds.includes(info.service);
}

/** Setup is needed when hosted by Manager Server and the project is not initialised. */
export function isSetupRequired(info: UsageServiceInfo): boolean {
  if (!isManagerService(info)) return false;
  const initialised = info.projectInitialized ?? info.configured;
  return info.setupRequired === true || initialised !== true;
}

export interface SetupRequest {
  cpaBaseUrl: string;
  cpaManagementKey: string;
  pollIntervalMs?: number;
  ensureUsageStatisticsEnabled: boolean;
  requestMonitoringEnabled: boolean;
}

export interface CollectorConfig {
  enabled?: boolean;
  collectorMode?: 'auto' | 'subscribe' | 'http' | 'resp' | string;
  queue?: string;
  popSide?: 'left' | 'right' | string;
  batchSize?: number;
  pollIntervalMs?: number;
  queryLimit?: number;
  tlsSkipVerify?: boolean;
}

export interface ManagerConfig {
  cpaConnection?: { cpaBaseUrl?: string; managementKey?: string };
  collector?: CollectorConfig;
  codexInspection?: Record<string, unknown>;
  externalUsageService?: { enabled: boolean };
  updatedAtMs?: number;
  /** Beyond upstream: usage retention in days (0 keeps everything), when the server exposes it. */
  usageRetentionDays?: number;
}

export interface ManagerConfigResponse {
  config: ManagerConfig;
  source: 'env' | 'db' | '';
  cpaUsage?: {
    usageStatisticsEnabled?: boolean;
    redisUsageQueueRetentionSeconds?: number;
    retentionSourceDefault?: boolean;
  };
}

export interface CollectorStatus {
  collector: 'stopped' | 'starting' | 'running' | 'error' | string;
  upstream?: string;
  mode?: string;
  transport?: string;
  queue?: string;
  lastConsumedAt?: number;
  lastInsertedAt?: number;
  totalInserted?: number;
  totalSkipped?: number;
  deadLetters?: number;
  lastError?: string;
  // Throughput and connection (all optional: older servers omit them).
  eventsPerSecond?: number;
  lagMs?: number;
  reconnects?: number;
  batches?: number;
  /** Subscriptions CPA ended (connection closed by CPA while subscribed). */
  subscriberDrops?: number;
  /** Epoch ms of the last subscriber drop; 0 = never. */
  lastSubscriberDropAt?: number;
  /** Of subscriberDrops, those that looked like CPA's slow-consumer overflow (one record lost). */
  overflowDrops?: number;
  /** Records recovered from CPA's pop queue by the drains (after a (re)subscribe, background). */
  drainedRecords?: number;
  /** Epoch ms of the last drain; 0 = never. */
  lastDrainAt?: number;
  drainTransport?: 'resp' | 'http' | '' | string;
  /** Received from CPA, not yet committed to SQLite (in memory). */
  backlogRecords?: number;
  backlogBytes?: number;
  /** Configured bounds of the in-memory write buffer. */
  backlogMaxRecords?: number;
  backlogMaxBytes?: number;
  /** The write buffer is full, so the reader has stopped reading from CPA. */
  readerStalled?: boolean;
  readerStalls?: number;
  readerStallMs?: number;
  /** Records believed never to have reached us (overflow drops plus undrainable gaps). */
  estimatedLost?: number;
  /** Subscription gaps for which CPA's pop queue could not be drained. */
  undrainedGaps?: number;
}

export interface DatabaseStatus {
  databaseBytes?: number;
  walBytes?: number;
  shmBytes?: number;
  totalBytes?: number;
  journalSizeLimitBytes?: number;
  checkpoint?: { mode?: string; executedAtMs?: number; durationMs?: number; error?: string };
}

export interface DatabaseMaintenance {
  required: boolean;
  performanceDegraded?: boolean;
  deferredIndexes?: number;
  offlineJobs?: number;
  reasons?: string[];
  command?: string;
}

export interface ServerStatus {
  service: string;
  dbPath?: string;
  events?: number;
  deadLetters?: number;
  collector?: CollectorStatus;
  database?: DatabaseStatus;
  databaseMaintenance?: DatabaseMaintenance;
  dataMigration?: { name: string; status: string };
}

export const getInfo = (conn: Connection) =>
  request<UsageServiceInfo>(conn, '/usage-service/info', { anonymous: true, timeoutMs: 10_000 });

export const postSetup = (conn: Connection, body: SetupRequest) =>
  request<{ ok: boolean; upstream?: string }>(conn, '/setup', {
    method: 'POST',
    json: body,
    timeoutMs: 60_000,
  });

export const getManagerConfig = (conn: Connection) =>
  request<ManagerConfigResponse>(conn, '/usage-service/config');

export const putManagerConfig = (conn: Connection, config: ManagerConfig) =>
  request<ManagerConfigResponse>(conn, '/usage-service/config', {
    method: 'PUT',
    json: { config },
    timeoutMs: 60_000,
  });

export const getStatus = (conn: Connection) => request<ServerStatus>(conn, '/status');
