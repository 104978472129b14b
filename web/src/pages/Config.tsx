// Manager configuration (Full Mode): CPA connection, collector mode, poll interval, batch size,
// monitoring switch, CPA key rotation, retention facts. In CPA panel mode: a read-only view of
// the CPA config.
import { useEffect, useState } from 'preact/hooks';
import { useT } from '../i18n';
import { useStore } from '../lib/store';
import { sessionStore, saveSession, useSession } from '../lib/session';
import { computeFeatures, featuresStore, refreshStore } from '../lib/appState';
import { useAsync } from '../lib/useAsync';
import { getManagerConfig, putManagerConfig, type ManagerConfig } from '../api/manager';
import { getCpaConfig } from '../api/cpa';
import { Async, Card, ErrorBox, Notice } from '../components/ui';

interface Form {
  cpaBaseUrl: string;
  managementKey: string;
  enabled: boolean;
  collectorMode: string;
  pollIntervalMs: string;
  batchSize: string;
  queue: string;
  popSide: string;
  tlsSkipVerify: boolean;
}

function toForm(c: ManagerConfig): Form {
  return {
    cpaBaseUrl: c.cpaConnection?.cpaBaseUrl ?? '',
    managementKey: c.cpaConnection?.managementKey ?? '',
    enabled: c.collector?.enabled !== false,
    collectorMode: c.collector?.collectorMode || 'auto',
    pollIntervalMs: String(c.collector?.pollIntervalMs ?? 500),
    batchSize: String(c.collector?.batchSize ?? 100),
    queue: c.collector?.queue ?? 'usage',
    popSide: c.collector?.popSide || 'right',
    tlsSkipVerify: !!c.collector?.tlsSkipVerify,
  };
}

function ManagerConfigCard() {
  const t = useT();
  const session = useSession();
  const tick = useStore(refreshStore);
  const state = useAsync(() => getManagerConfig(session), [tick]);
  const [form, setForm] = useState<Form | null>(null);
  const [newKey, setNewKey] = useState('');
  const [error, setError] = useState<unknown>(undefined);
  const [saved, setSaved] = useState('');
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    if (state.data) setForm(toForm(state.data.config));
  }, [state.data]);

  const save = async (f: Form, message: string) => {
    const poll = Number(f.pollIntervalMs);
    const batch = Number(f.batchSize);
    if (!Number.isInteger(poll) || poll <= 0 || !Number.isInteger(batch) || batch <= 0) {
      setError(undefined);
      setSaved('');
      setInvalid(t('config.invalidNumbers'));
      return;
    }
    setInvalid('');
    setBusy(true);
    setError(undefined);
    setSaved('');
    try {
      const r = await putManagerConfig(session, {
        ...state.data?.config,
        cpaConnection: { cpaBaseUrl: f.cpaBaseUrl.trim(), managementKey: f.managementKey.trim() },
        collector: {
          ...state.data?.config.collector,
          enabled: f.enabled,
          collectorMode: f.collectorMode,
          pollIntervalMs: poll,
          batchSize: batch,
          queue: f.queue.trim(),
          popSide: f.popSide,
          tlsSkipVerify: f.tlsSkipVerify,
        },
      });
      setForm(toForm(r.config));
      setSaved(message);
      if (session.recovery) saveSession({ ...session, recovery: false });
      void computeFeatures(session);
      state.reload();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const [invalid, setInvalid] = useState('');

  return (
    <Async state={state}>
      {(cfg) => {
        if (!form) return null;
        const locked = cfg.source === 'env';
        const set = (patch: Partial<Form>) => setForm({ ...form, ...patch });
        return (
          <>
            <Card title={t('config.manager')}>
              {locked && <Notice tone="info">{t('config.envManaged')}</Notice>}
              <form
                class="form-grid"
                onSubmit={(e) => {
                  e.preventDefault();
                  void save(form, t('config.saved'));
                }}
              >
                <label class="field">
                  <span>{t('setup.cpaUrl')}</span>
                  <input
                    id="cfg-cpa-url"
                    value={form.cpaBaseUrl}
                    disabled={locked}
                    onInput={(e) => set({ cpaBaseUrl: e.currentTarget.value })}
                  />
                </label>
                <label class="field check">
                  <input
                    type="checkbox"
                    checked={form.enabled}
                    disabled={locked}
                    onChange={(e) => set({ enabled: e.currentTarget.checked })}
                  />
                  {t('setup.monitoring')}
                </label>
                <label class="field">
                  <span>{t('config.collectorMode')}</span>
                  <select
                    value={form.collectorMode}
                    disabled={locked}
                    onChange={(e) => set({ collectorMode: e.currentTarget.value })}
                  >
                    {['auto', 'subscribe', 'http', 'resp'].map((m) => (
                      <option key={m} value={m}>
                        {m}
                      </option>
                    ))}
                  </select>
                </label>
                <label class="field">
                  <span>{t('setup.poll')}</span>
                  <input
                    type="number"
                    min={1}
                    value={form.pollIntervalMs}
                    disabled={locked}
                    onInput={(e) => set({ pollIntervalMs: e.currentTarget.value })}
                  />
                </label>
                <label class="field">
                  <span>{t('config.batchSize')}</span>
                  <input
                    type="number"
                    min={1}
                    value={form.batchSize}
                    disabled={locked}
                    onInput={(e) => set({ batchSize: e.currentTarget.value })}
                  />
                </label>
                <label class="field">
                  <span>{t('config.queue')}</span>
                  <input
                    value={form.queue}
                    disabled={locked}
                    onInput={(e) => set({ queue: e.currentTarget.value })}
                  />
                </label>
                <label class="field">
                  <span>{t('config.popSide')}</span>
                  <select
                    value={form.popSide}
                    disabled={locked}
                    onChange={(e) => set({ popSide: e.currentTarget.value })}
                  >
                    <option value="right">right</option>
                    <option value="left">left</option>
                  </select>
                </label>
                <label class="field check">
                  <input
                    type="checkbox"
                    checked={form.tlsSkipVerify}
                    disabled={locked}
                    onChange={(e) => set({ tlsSkipVerify: e.currentTarget.checked })}
                  />
                  {t('config.tlsSkipVerify')}
                </label>
                <div class="form-actions">
                  <button type="submit" class="btn btn-primary" disabled={busy || locked}>
                    {busy ? t('common.working') : t('common.save')}
                  </button>
                </div>
              </form>
              {invalid && <Notice tone="error">{invalid}</Notice>}
              {saved && <Notice tone="good">{saved}</Notice>}
              {error !== undefined && <ErrorBox error={error} />}
            </Card>
            <div class="grid-2">
              <Card title={t('config.rotateKey')}>
                <p class="muted">{t('config.rotateHint')}</p>
                <form
                  class="inline-form"
                  onSubmit={(e) => {
                    e.preventDefault();
                    if (newKey.trim()) {
                      void save({ ...form, managementKey: newKey.trim() }, t('config.rotated'));
                      setNewKey('');
                    }
                  }}
                >
                  <label class="field">
                    <span>{t('config.newKey')}</span>
                    <input
                      type="password"
                      autoComplete="off"
                      value={newKey}
                      disabled={locked}
                      onInput={(e) => setNewKey(e.currentTarget.value)}
                    />
                  </label>
                  <button type="submit" class="btn" disabled={busy || locked || !newKey.trim()}>
                    {t('config.rotate')}
                  </button>
                </form>
              </Card>
              <Card title={t('config.cpaUsage')}>
                <dl class="facts">
                  <dt>{t('config.source')}</dt>
                  <dd>{cfg.source || '—'}</dd>
                  <dt>{t('config.usageStats')}</dt>
                  <dd>
                    {cfg.cpaUsage
                      ? cfg.cpaUsage.usageStatisticsEnabled
                        ? t('common.on')
                        : t('common.off')
                      : '—'}
                  </dd>
                  <dt>{t('config.queueRetention')}</dt>
                  <dd>
                    {cfg.cpaUsage?.redisUsageQueueRetentionSeconds !== undefined
                      ? `${cfg.cpaUsage.redisUsageQueueRetentionSeconds} s${cfg.cpaUsage.retentionSourceDefault ? ` (${t('config.default')})` : ''}`
                      : '—'}
                  </dd>
                  <dt>{t('config.retentionDays')}</dt>
                  <dd>
                    {cfg.config.usageRetentionDays !== undefined
                      ? cfg.config.usageRetentionDays === 0
                        ? t('config.keepAll')
                        : t('config.days', { n: cfg.config.usageRetentionDays })
                      : t('config.retentionEnv')}
                  </dd>
                </dl>
              </Card>
            </div>
          </>
        );
      }}
    </Async>
  );
}

function CpaConfigCard() {
  const t = useT();
  const session = useSession();
  const tick = useStore(refreshStore);
  const state = useAsync(() => getCpaConfig(session), [tick]);
  return (
    <Card title={t('config.cpa')}>
      <Async state={state}>{(c) => <pre class="code">{JSON.stringify(c, null, 2)}</pre>}</Async>
    </Card>
  );
}

export function ConfigPage() {
  const t = useT();
  const features = useStore(featuresStore);
  const session = useStore(sessionStore);
  return (
    <div class="page" data-testid="page-config">
      <h1>{t('nav.config')}</h1>
      {features.monitoring === 'monitoring_disabled' && (
        <Notice tone="info">{t('config.monitoringOff')}</Notice>
      )}
      {features.manager ? <ManagerConfigCard /> : null}
      {!session?.recovery && <CpaConfigCard />}
    </div>
  );
}
