// Dashboard (panel spec A.4.1): connection + counts in both modes; today's usage, traffic,
// health timeline, token mix, rankings, channel health, failures and collector in Full Mode.
import { useMemo } from 'preact/hooks';
import { Link } from 'wouter-preact';
import { useT, langStore, type MessageKey } from '../i18n';
import { useStore } from '../lib/store';
import { useSession } from '../lib/session';
import { cpaVersionStore, featuresStore, kPanelVersion, refreshStore } from '../lib/appState';
import { useAsync } from '../lib/useAsync';
import {
  bucketLabel,
  formatCompact,
  formatDateTime,
  formatDuration,
  formatNumber,
  formatPercent,
  formatUsd,
} from '../lib/format';
import { countList, getApiKeys, getAuthFileCount, getCpaConfig } from '../api/cpa';
import { getDashboardSummary, identityLabel, type DashboardSummary } from '../api/dashboard';
import { getStatus } from '../api/manager';
import { Async, Badge, Card, Empty, ErrorBox, Loading, Stat, Table } from '../components/ui';
import { Chart, kPalette } from '../components/Chart';
import { CollectorCard } from '../components/Collector';
import { useAliasMap, callerLabel } from '../lib/aliases';
import { redactSecrets } from '../lib/redact';

function ConnectionCard() {
  const t = useT();
  const session = useSession();
  const version = useStore(cpaVersionStore);
  return (
    <Card title={t('dashboard.connection')}>
      <dl class="facts">
        <dt>{t('dashboard.apiBase')}</dt>
        <dd class="break">{session?.apiBase}</dd>
        <dt>{t('dashboard.panelVersion')}</dt>
        <dd>{kPanelVersion}</dd>
        <dt>{t('dashboard.cpaVersion')}</dt>
        <dd>{version.version ?? '—'}</dd>
      </dl>
    </Card>
  );
}

function QuickStats() {
  const t = useT();
  const session = useSession();
  const tick = useStore(refreshStore);
  const state = useAsync(async () => {
    if (!session) return null;
    const [keys, gemini, codex, claude, openai, auth] = await Promise.all([
      getApiKeys(session)
        .then((k) => k.length)
        .catch(() => null),
      countList(session, 'gemini-api-key'),
      countList(session, 'codex-api-key'),
      countList(session, 'claude-api-key'),
      countList(session, 'openai-compatibility'),
      getAuthFileCount(session),
    ]);
    const providers = [gemini, codex, claude, openai].filter((v): v is number => v !== null);
    return {
      keys,
      providers: providers.length ? providers.reduce((a, b) => a + b, 0) : null,
      auth,
    };
  }, [session?.credential, tick]);
  const d = state.data;
  return (
    <div class="stats-grid">
      <Stat
        label={t('dashboard.apiKeys')}
        value={state.loading && !d ? '…' : formatNumber(d?.keys ?? null)}
      />
      <Stat
        label={t('dashboard.providerKeys')}
        value={state.loading && !d ? '…' : formatNumber(d?.providers ?? null)}
      />
      <Stat
        label={t('dashboard.authFiles')}
        value={state.loading && !d ? '…' : formatNumber(d?.auth ?? null)}
      />
    </div>
  );
}

function ConfigSummary() {
  const t = useT();
  const session = useSession();
  const tick = useStore(refreshStore);
  const state = useAsync(() => getCpaConfig(session), [session?.credential, tick], !!session);
  const show = (v: unknown): string =>
    v === undefined || v === null ? '—' : typeof v === 'object' ? JSON.stringify(v) : String(v);
  return (
    <Card
      title={t('dashboard.configSummary')}
      actions={<Link href="/config">{t('dashboard.openConfig')}</Link>}
    >
      <Async state={state}>
        {(cfg) => {
          const routing = cfg['routing'] as Record<string, unknown> | undefined;
          const rows: [MessageKey, unknown][] = [
            ['dashboard.cfg.debug', cfg['debug']],
            ['dashboard.cfg.retry', cfg['request-retry']],
            ['dashboard.cfg.routing', routing?.['strategy'] ?? cfg['routing-strategy']],
            ['dashboard.cfg.usageStats', cfg['usage-statistics-enabled']],
            ['dashboard.cfg.proxy', cfg['proxy-url'] || undefined],
            ['dashboard.cfg.retention', cfg['redis-usage-queue-retention-seconds']],
          ];
          return (
            <dl class="facts">
              {rows.map(([k, v]) => (
                <>
                  <dt key={`${k}-t`}>{t(k)}</dt>
                  <dd key={`${k}-d`}>{show(v)}</dd>
                </>
              ))}
            </dl>
          );
        }}
      </Async>
    </Card>
  );
}

function HealthStrip(props: { s: DashboardSummary }) {
  const t = useT();
  const tl = props.s.today_request_health_timeline;
  return (
    <Card
      title={t('dashboard.health')}
      actions={<span class="muted">{formatPercent(tl.success_rate)}</span>}
    >
      <div
        class="health-strip"
        role="img"
        aria-label={t('dashboard.healthAria', { rate: formatPercent(tl.success_rate) })}
      >
        {tl.points.map((p) => (
          <span
            key={p.bucket_ms}
            class={`cell tone-${p.future ? 'future' : p.tone}`}
            title={`${bucketLabel(p.bucket_ms, 'hour')} · ${p.calls} · ${formatPercent(p.success_rate)}`}
          />
        ))}
      </div>
      <div class="legend-row muted small">
        <span>
          <i class="dot tone-good" /> {t('tone.good')}
        </span>
        <span>
          <i class="dot tone-warn" /> {t('tone.warn')}
        </span>
        <span>
          <i class="dot tone-bad" /> {t('tone.bad')}
        </span>
        <span>
          <i class="dot tone-empty" /> {t('tone.empty')}
        </span>
      </div>
      <h3 class="sub">{t('dashboard.hourly')}</h3>
      <div class="heat-strip" role="img" aria-label={t('dashboard.hourly')}>
        {props.s.hourly_activity.map((h) => (
          <span
            key={h.hour_index}
            class="cell"
            style={{ opacity: 0.12 + 0.88 * Math.min(1, h.intensity) }}
            title={`${String(h.hour_index).padStart(2, '0')}:00 · ${h.calls}`}
          />
        ))}
      </div>
    </Card>
  );
}

function UsageBlocks() {
  const t = useT();
  const lang = useStore(langStore);
  const session = useSession();
  const tick = useStore(refreshStore);
  const aliases = useAliasMap(session, true);
  const state = useAsync(() => {
    const now = Date.now();
    const d = new Date(now);
    d.setHours(0, 0, 0, 0);
    return getDashboardSummary(session, {
      todayStartMs: d.getTime(),
      nowMs: now,
      topModels: 8,
      recentFailures: 10,
    });
  }, [session?.credential, tick]);

  const trafficOption = useMemo(() => {
    const s = state.data;
    if (!s) return null;
    return {
      tooltip: { trigger: 'axis' },
      legend: { data: [t('metric.success'), t('metric.failure'), t('metric.tokens')], bottom: 0 },
      grid: { left: 48, right: 48, top: 16, bottom: 48 },
      xAxis: {
        type: 'category',
        data: s.traffic_timeline.map((p) => bucketLabel(p.bucket_ms, 'hour')),
      },
      yAxis: [
        { type: 'value', name: t('metric.calls') },
        {
          type: 'value',
          name: t('metric.tokens'),
          axisLabel: { formatter: (v: number) => formatCompact(v) },
        },
      ],
      series: [
        {
          name: t('metric.success'),
          type: 'bar',
          stack: 'c',
          data: s.traffic_timeline.map((p) => p.success),
          color: kPalette[1],
        },
        {
          name: t('metric.failure'),
          type: 'bar',
          stack: 'c',
          data: s.traffic_timeline.map((p) => p.failure),
          color: kPalette[3],
        },
        {
          name: t('metric.tokens'),
          type: 'line',
          yAxisIndex: 1,
          smooth: true,
          data: s.traffic_timeline.map((p) => p.tokens),
          color: kPalette[0],
        },
      ],
    };
  }, [state.data, lang]);

  const mixOption = useMemo(() => {
    const s = state.data;
    if (!s) return null;
    return {
      tooltip: { trigger: 'item', valueFormatter: (v: number) => formatNumber(v, lang) },
      legend: { bottom: 0, type: 'scroll' },
      series: [
        {
          type: 'pie',
          radius: ['45%', '70%'],
          data: s.token_mix
            .filter((m) => m.tokens > 0)
            .map((m) => ({ name: m.key, value: m.tokens })),
          color: kPalette,
        },
      ],
    };
  }, [state.data, lang]);

  if (state.error !== undefined) return <ErrorBox error={state.error} onRetry={state.reload} />;
  const s = state.data;
  if (!s) return <Loading />;
  const today = s.today;
  return (
    <>
      <div class="stats-grid" data-testid="today-stats">
        <Stat
          label={t('metric.requests')}
          testId="stat-requests"
          raw={today.total_calls}
          value={formatCompact(today.total_calls)}
          hint={`${formatNumber(today.success_calls, lang)} ✓ · ${formatNumber(today.failure_calls, lang)} ✗`}
        />
        <Stat
          label={t('metric.successRate')}
          value={formatPercent(today.success_rate)}
          tone={
            today.total_calls === 0
              ? undefined
              : today.success_rate >= 0.95
                ? 'good'
                : today.success_rate >= 0.8
                  ? 'warn'
                  : 'bad'
          }
        />
        <Stat
          label={t('metric.tokens')}
          testId="stat-tokens"
          raw={today.total_tokens}
          value={formatCompact(today.total_tokens)}
          hint={`${t('metric.input')} ${formatCompact(today.input_tokens)} · ${t('metric.output')} ${formatCompact(today.output_tokens)}`}
        />
        <Stat
          label={t('metric.cost')}
          testId="stat-cost"
          raw={today.total_cost}
          value={formatUsd(today.total_cost)}
        />
        <Stat label={t('metric.avgLatency')} value={formatDuration(today.average_latency_ms)} />
        <Stat
          label={t('metric.rpm')}
          testId="stat-rpm"
          raw={s.rolling_30m.rpm}
          value={formatNumber(s.rolling_30m.rpm, lang)}
          hint={`${t('metric.tpm')} ${formatCompact(s.rolling_30m.tpm)}`}
        />
        <Stat
          label={t('metric.cached')}
          value={formatCompact(today.cached_tokens + today.cache_read_tokens)}
          hint={`${t('metric.reasoning')} ${formatCompact(today.reasoning_tokens)}`}
        />
        <Stat label={t('metric.zeroToken')} value={formatNumber(today.zero_token_calls, lang)} />
      </div>
      <div class="grid-2">
        <Card title={t('dashboard.traffic')}>
          {s.traffic_timeline.length && trafficOption ? (
            <Chart option={trafficOption} label={t('dashboard.traffic')} />
          ) : (
            <Empty />
          )}
        </Card>
        <Card title={t('dashboard.tokenMix')}>
          {s.token_mix.some((m) => m.tokens > 0) && mixOption ? (
            <Chart option={mixOption} label={t('dashboard.tokenMix')} />
          ) : (
            <Empty />
          )}
        </Card>
      </div>
      <HealthStrip s={s} />
      <div class="grid-2">
        <Card title={t('dashboard.costRank')}>
          {s.model_cost_rank.length ? (
            <Table
              caption={t('dashboard.costRank')}
              rows={s.model_cost_rank}
              rowKey={(r) => r.model}
              columns={[
                { key: 'model', label: t('metric.model'), render: (r) => r.model },
                {
                  key: 'calls',
                  label: t('metric.calls'),
                  render: (r) => formatNumber(r.calls, lang),
                  numeric: true,
                },
                {
                  key: 'cost',
                  label: t('metric.cost'),
                  render: (r) => formatUsd(r.cost),
                  numeric: true,
                },
                {
                  key: 'share',
                  label: t('metric.share'),
                  render: (r) => formatPercent(r.cost_share ?? 0),
                  numeric: true,
                },
              ]}
            />
          ) : (
            <Empty />
          )}
        </Card>
        <Card title={t('dashboard.topModels')}>
          {s.top_models_today.length ? (
            <Table
              caption={t('dashboard.topModels')}
              rows={s.top_models_today}
              rowKey={(r) => r.model}
              columns={[
                { key: 'model', label: t('metric.model'), render: (r) => r.model },
                {
                  key: 'calls',
                  label: t('metric.calls'),
                  render: (r) => formatNumber(r.calls, lang),
                  numeric: true,
                },
                {
                  key: 'tokens',
                  label: t('metric.tokens'),
                  render: (r) => formatCompact(r.tokens),
                  numeric: true,
                },
                {
                  key: 'rate',
                  label: t('metric.successRate'),
                  render: (r) => formatPercent(r.success_rate),
                  numeric: true,
                },
              ]}
            />
          ) : (
            <Empty />
          )}
        </Card>
      </div>
      <Card title={t('dashboard.channels')}>
        {s.channel_health.length ? (
          <Table
            caption={t('dashboard.channels')}
            rows={s.channel_health}
            rowKey={(r, i) => `${r.auth_index}-${i}`}
            columns={[
              {
                key: 'who',
                label: t('metric.credential'),
                render: (r) => (
                  <>
                    <Badge tone={r.tone}>●</Badge> {identityLabel(r)}
                  </>
                ),
              },
              {
                key: 'provider',
                label: t('metric.provider'),
                render: (r) => r.auth_provider_snapshot ?? '—',
              },
              {
                key: 'calls',
                label: t('metric.calls'),
                render: (r) => formatNumber(r.calls, lang),
                numeric: true,
              },
              {
                key: 'fail',
                label: t('metric.failureRate'),
                render: (r) => formatPercent(r.failure_rate),
                numeric: true,
              },
              {
                key: 'lat',
                label: t('metric.avgLatency'),
                render: (r) => formatDuration(r.average_latency_ms),
                numeric: true,
              },
              {
                key: 'cost',
                label: t('metric.cost'),
                render: (r) => formatUsd(r.cost),
                numeric: true,
              },
            ]}
          />
        ) : (
          <Empty />
        )}
      </Card>
      {s.failure_sources.length > 0 && (
        <Card title={t('dashboard.failureSources')}>
          <Table
            caption={t('dashboard.failureSources')}
            rows={s.failure_sources}
            rowKey={(r, i) => `${r.source_hash ?? ''}-${r.auth_index}-${i}`}
            columns={[
              {
                key: 'who',
                label: t('metric.credential'),
                render: (r) => (
                  <>
                    <Badge tone={r.tone ?? 'bad'}>●</Badge> {identityLabel(r)}
                  </>
                ),
              },
              {
                key: 'provider',
                label: t('metric.provider'),
                render: (r) => r.auth_provider_snapshot ?? '—',
              },
              {
                key: 'fail',
                label: t('metric.failure'),
                render: (r) =>
                  `${formatNumber(r.failures ?? r.failure ?? 0, lang)} / ${formatNumber(r.calls, lang)}`,
                numeric: true,
              },
              {
                key: 'rate',
                label: t('metric.failureRate'),
                render: (r) =>
                  formatPercent(
                    r.failure_rate ?? (r.calls ? (r.failures ?? r.failure ?? 0) / r.calls : 0),
                  ),
                numeric: true,
              },
              {
                key: 'seen',
                label: t('metric.lastSeen'),
                render: (r) => formatDateTime(r.last_seen_ms),
              },
            ]}
          />
        </Card>
      )}
      <Card title={t('dashboard.recentFailures')}>
        {s.recent_failures.length ? (
          <Table
            caption={t('dashboard.recentFailures')}
            rows={s.recent_failures}
            rowKey={(r, i) => `${r.timestamp_ms}-${i}`}
            columns={[
              {
                key: 'time',
                label: t('metric.time'),
                render: (r) => formatDateTime(r.timestamp_ms),
              },
              { key: 'model', label: t('metric.model'), render: (r) => r.model },
              { key: 'who', label: t('metric.credential'), render: (r) => identityLabel(r) },
              {
                key: 'caller',
                label: t('metric.caller'),
                render: (r) => callerLabel(r.api_key_hash, aliases),
              },
              {
                key: 'code',
                label: t('metric.status'),
                render: (r) => <Badge tone="bad">{r.fail_status_code ?? '—'}</Badge>,
              },
              {
                key: 'sum',
                label: t('metric.failSummary'),
                render: (r) => (
                  <span class="clip" title={redactSecrets(r.fail_summary)}>
                    {redactSecrets(r.fail_summary) || '—'}
                  </span>
                ),
              },
            ]}
          />
        ) : (
          <Empty label={t('dashboard.noFailures')} />
        )}
      </Card>
    </>
  );
}

function StatusBlock() {
  const session = useSession();
  const tick = useStore(refreshStore);
  const state = useAsync(() => getStatus(session), [session?.credential, tick]);
  const t = useT();
  return (
    <>
      {state.data?.databaseMaintenance?.required && (
        <div class="notice tone-warn">
          {t('system.maintenanceRequired', {
            command: state.data.databaseMaintenance.command ?? 'cleanup-derived',
          })}
        </div>
      )}
      <Async state={state}>{(st) => <CollectorCard status={st} />}</Async>
    </>
  );
}

export function DashboardPage() {
  const t = useT();
  const features = useStore(featuresStore);
  return (
    <div class="page" data-testid="page-dashboard">
      <h1>{t('nav.dashboard')}</h1>
      <div class="grid-2">
        <ConnectionCard />
        <div>
          <QuickStats />
        </div>
      </div>
      {features.manager && (
        <>
          <h2 class="section-title">{t('dashboard.today')}</h2>
          <UsageBlocks />
          <StatusBlock />
        </>
      )}
      <ConfigSummary />
    </div>
  );
}
