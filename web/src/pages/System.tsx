// System (A.4.13): versions (panel, CPA via X-CPA-VERSION), data directory and database facts,
// collector status, model list, quick links, clear login storage.
import { useT, langStore } from '../i18n';
import { useStore } from '../lib/store';
import { clearLoginStorage, useSession } from '../lib/session';
import { featuresStore, kPanelVersion, modeStore, refreshStore } from '../lib/appState';
import { useAsync } from '../lib/useAsync';
import { formatBytes, formatDateTime, formatNumber } from '../lib/format';
import { getStatus } from '../api/manager';
import { getApiKeys, getCpaVersion, getModels } from '../api/cpa';
import { Async, Card, Empty } from '../components/ui';
import { CollectorCard } from '../components/Collector';

function dirOf(path: string | undefined): string {
  if (!path) return '—';
  const i = path.lastIndexOf('/');
  return i > 0 ? path.slice(0, i) : path;
}

export function SystemPage() {
  const t = useT();
  const lang = useStore(langStore);
  const session = useSession();
  const features = useStore(featuresStore);
  const mode = useStore(modeStore);
  const tick = useStore(refreshStore);
  const version = useAsync(() => getCpaVersion(session), [tick]);
  const status = useAsync(() => getStatus(session), [tick], features.manager);
  const models = useAsync(async () => {
    const keys = await getApiKeys(session);
    if (!keys[0]) return [];
    return getModels(session, keys[0]);
  }, [tick]);

  return (
    <div class="page" data-testid="page-system">
      <h1>{t('nav.system')}</h1>
      <div class="grid-2">
        <Card title={t('system.versions')}>
          <dl class="facts">
            <dt>{t('dashboard.panelVersion')}</dt>
            <dd>{kPanelVersion}</dd>
            <dt>{t('dashboard.cpaVersion')}</dt>
            <dd data-testid="cpa-version">
              {version.loading ? '…' : version.data?.version || t('system.unknown')}
            </dd>
            <dt>{t('system.cpaBuildDate')}</dt>
            <dd>{version.data?.buildDate || '—'}</dd>
            <dt>{t('system.mode')}</dt>
            <dd>{features.manager ? t('mode.manager') : t('mode.external')}</dd>
            {mode.info?.startedAt ? (
              <>
                <dt>{t('system.startedAt')}</dt>
                <dd>{formatDateTime(mode.info.startedAt)}</dd>
              </>
            ) : null}
          </dl>
        </Card>
        {features.manager && (
          <Card title={t('system.data')}>
            <Async state={status}>
              {(s) => (
                <dl class="facts">
                  <dt>{t('system.dataDir')}</dt>
                  <dd class="break">{dirOf(s.dbPath)}</dd>
                  <dt>{t('system.dbPath')}</dt>
                  <dd class="break">{s.dbPath ?? '—'}</dd>
                  <dt>{t('system.dbSize')}</dt>
                  <dd>{formatBytes(s.database?.databaseBytes)}</dd>
                  <dt>{t('system.walSize')}</dt>
                  <dd>
                    {formatBytes(s.database?.walBytes)} / SHM {formatBytes(s.database?.shmBytes)}
                  </dd>
                  <dt>{t('system.totalSize')}</dt>
                  <dd>{formatBytes(s.database?.totalBytes)}</dd>
                  <dt>{t('collector.events')}</dt>
                  <dd>{formatNumber(s.events, lang)}</dd>
                  <dt>{t('system.dataKey')}</dt>
                  <dd>{mode.info?.dataKeyReady ? t('common.on') : '—'}</dd>
                  <dt>{t('system.maintenance')}</dt>
                  <dd>
                    {s.databaseMaintenance
                      ? s.databaseMaintenance.required
                        ? t('system.maintenanceRequired', {
                            command: s.databaseMaintenance.command ?? 'cleanup-derived',
                          })
                        : t('system.maintenanceOk')
                      : '—'}
                  </dd>
                </dl>
              )}
            </Async>
          </Card>
        )}
      </div>
      {features.manager && status.data && <CollectorCard status={status.data} />}
      <Card title={t('system.models')}>
        <Async state={models} isEmpty={(m) => !m.length} emptyLabel={t('system.noModels')}>
          {(m) => (
            <ul class="chips">
              {m.map((x) => (
                <li key={x.id} title={x.owned_by}>
                  {x.id}
                </li>
              ))}
            </ul>
          )}
        </Async>
      </Card>
      <div class="grid-2">
        <Card title={t('system.links')}>
          <ul class="links">
            <li>
              <a
                href="https://github.com/router-for-me/CLIProxyAPI"
                target="_blank"
                rel="noreferrer"
              >
                CLIProxyAPI
              </a>
            </li>
            <li>
              <a href="https://github.com/seakee/CPA-Manager-Plus" target="_blank" rel="noreferrer">
                CPA Manager Plus
              </a>
            </li>
          </ul>
        </Card>
        <Card title={t('system.storage')}>
          <p class="muted">{t('system.clearHint')}</p>
          <button
            type="button"
            class="btn btn-danger"
            onClick={() => {
              if (confirm(t('system.clearConfirm'))) clearLoginStorage();
            }}
          >
            {t('system.clear')}
          </button>
        </Card>
      </div>
      {!features.manager && <Empty label={t('system.managerOnly')} />}
    </div>
  );
}
