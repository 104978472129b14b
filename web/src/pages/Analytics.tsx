// Usage analytics (panel spec A.4.9): filters + six tabs; each tab requests only its sections.
import { useMemo, useState } from 'preact/hooks';
import { useT, langStore } from '../i18n';
import { useStore, safeStorage } from '../lib/store';
import { useSession } from '../lib/session';
import { refreshStore } from '../lib/appState';
import { useAsync } from '../lib/useAsync';
import {
  browserTimeZone,
  bucketLabel,
  formatCompact,
  formatDateTime,
  formatDuration,
  formatNumber,
  formatPercent,
  formatUsd,
} from '../lib/format';
import { fromLocalInput, resolveRange, toLocalInput, type AnalyticsRange } from '../lib/ranges';
import { analyticsIncludeForTab, kAnalyticsTabs, type AnalyticsTab } from '../lib/analyticsTabs';
import {
  accountRows,
  postAnalytics,
  type AnalyticsFilters,
  type AnalyticsResponse,
  type StatRow,
} from '../api/monitoring';
import { identityLabel } from '../api/dashboard';
import { Async, Badge, Card, Empty, Select, Stat, Table, Tabs } from '../components/ui';
import { Chart, kPalette } from '../components/Chart';
import { SummaryCards, statusFilters } from './Monitoring';
import { useAliasMap, callerLabel } from '../lib/aliases';

interface UiState {
  tab: AnalyticsTab;
  range: AnalyticsRange;
  granularity: 'auto' | 'hour' | 'day';
  status: 'all' | 'success' | 'failed';
  minLatency: string;
  cache: 'all' | 'hit' | 'miss';
  metric: 'calls' | 'tokens' | 'cost';
}

const kUiKey = 'usageAnalytics.uiState';
const kDefaults: UiState = {
  tab: 'overview',
  range: '7d',
  granularity: 'auto',
  status: 'all',
  minLatency: '0',
  cache: 'all',
  metric: 'calls',
};

function loadUi(): UiState {
  try {
    return { ...kDefaults, ...(JSON.parse(safeStorage.get(kUiKey) ?? '{}') as Partial<UiState>) };
  } catch {
    return kDefaults;
  }
}

const kWeekdays = {
  en: ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'],
  'zh-CN': ['周日', '周一', '周二', '周三', '周四', '周五', '周六'],
};

export function AnalyticsPage() {
  const t = useT();
  const lang = useStore(langStore);
  const session = useSession();
  const tick = useStore(refreshStore);
  const aliases = useAliasMap(session, true);
  const [ui, setUi] = useState<UiState>(loadUi);
  const [custom, setCustom] = useState(() => ({
    from: Date.now() - 7 * 86_400_000,
    to: Date.now(),
  }));
  const [search, setSearch] = useState('');
  const [applied, setApplied] = useState('');
  const [model, setModel] = useState('');
  const [provider, setProvider] = useState('');

  const update = (patch: Partial<UiState>) => {
    const next = { ...ui, ...patch };
    setUi(next);
    safeStorage.set(kUiKey, JSON.stringify(next));
  };

  const base = useMemo(() => {
    const now = Date.now();
    const { from, to } = resolveRange(ui.range, now, custom);
    const filters: AnalyticsFilters = { ...statusFilters(ui.status) };
    if (Number(ui.minLatency) > 0) filters.min_latency_ms = Number(ui.minLatency);
    if (ui.cache !== 'all') filters.cache_status = ui.cache;
    if (model) filters.models = [model];
    if (provider) filters.providers = [provider];
    return {
      from_ms: from,
      to_ms: to,
      now_ms: now,
      time_zone: browserTimeZone(),
      search_query: applied,
      filters,
    };
  }, [ui.range, ui.status, ui.minLatency, ui.cache, custom, model, provider, applied, tick]);

  const state = useAsync(
    () =>
      postAnalytics(session, { ...base, include: analyticsIncludeForTab(ui.tab, ui.granularity) }),
    [base, ui.tab, ui.granularity],
  );
  const options = useAsync(
    () =>
      postAnalytics(session, {
        from_ms: base.from_ms,
        to_ms: base.to_ms,
        time_zone: base.time_zone,
        include: { filter_options: true },
      }),
    [base.from_ms, base.to_ms],
  );
  const fo = options.data?.filter_options;
  const opt = (list: string[] | undefined) => [
    { value: '', label: t('common.all') },
    ...[...new Set(list ?? [])].sort().map((v) => ({ value: v, label: v })),
  ];

  return (
    <div class="page" data-testid="page-analytics">
      <h1>{t('nav.analytics')}</h1>
      <div class="toolbar" role="search">
        <Select
          label={t('filter.range')}
          value={ui.range}
          onChange={(v) => update({ range: v })}
          options={(['24h', 'today', 'yesterday', '7d', '30d', 'custom'] as AnalyticsRange[]).map(
            (r) => ({ value: r, label: t(`range.${r}`) }),
          )}
        />
        {ui.range === 'custom' && (
          <>
            <label class="field field-inline">
              <span>{t('filter.from')}</span>
              <input
                type="datetime-local"
                value={toLocalInput(custom.from)}
                onChange={(e) => {
                  const v = fromLocalInput(e.currentTarget.value);
                  if (v) setCustom({ ...custom, from: v });
                }}
              />
            </label>
            <label class="field field-inline">
              <span>{t('filter.to')}</span>
              <input
                type="datetime-local"
                value={toLocalInput(custom.to)}
                onChange={(e) => {
                  const v = fromLocalInput(e.currentTarget.value);
                  if (v) setCustom({ ...custom, to: v });
                }}
              />
            </label>
          </>
        )}
        <Select
          label={t('filter.granularity')}
          value={ui.granularity}
          onChange={(v) => update({ granularity: v })}
          options={[
            { value: 'auto', label: t('granularity.auto') },
            { value: 'hour', label: t('granularity.hour') },
            { value: 'day', label: t('granularity.day') },
          ]}
        />
        <Select
          label={t('metric.status')}
          value={ui.status}
          onChange={(v) => update({ status: v })}
          options={[
            { value: 'all', label: t('common.all') },
            { value: 'success', label: t('metric.success') },
            { value: 'failed', label: t('metric.failure') },
          ]}
        />
        <Select
          label={t('filter.minLatency')}
          value={ui.minLatency}
          onChange={(v) => update({ minLatency: v })}
          options={['0', '3000', '10000', '30000'].map((v) => ({
            value: v,
            label: v === '0' ? t('common.all') : `≥ ${Number(v) / 1000} s`,
          }))}
        />
        <Select
          label={t('filter.cache')}
          value={ui.cache}
          onChange={(v) => update({ cache: v })}
          options={[
            { value: 'all', label: t('common.all') },
            { value: 'hit', label: t('filter.cacheHit') },
            { value: 'miss', label: t('filter.cacheMiss') },
          ]}
        />
      </div>
      <div class="toolbar">
        <Select
          label={t('metric.model')}
          value={model}
          onChange={setModel}
          options={opt(fo?.models ?? fo?.model_stats?.map((m) => m.model))}
        />
        <Select
          label={t('metric.provider')}
          value={provider}
          onChange={setProvider}
          options={opt(fo?.providers)}
        />
        <form
          class="field field-inline search"
          onSubmit={(e) => {
            e.preventDefault();
            setApplied(search.trim());
          }}
        >
          <label for="ua-search" class="sr-only">
            {t('filter.search')}
          </label>
          <input
            id="ua-search"
            type="search"
            placeholder={t('filter.searchPlaceholder')}
            value={search}
            onInput={(e) => setSearch(e.currentTarget.value)}
          />
          <button type="submit" class="btn btn-small">
            {t('filter.search')}
          </button>
        </form>
      </div>
      <Card>
        <Tabs
          label={t('analytics.tabs')}
          active={ui.tab}
          onChange={(k) => update({ tab: k })}
          tabs={kAnalyticsTabs.map((k) => ({ key: k, label: t(`analytics.tab.${k}`) }))}
        />
        <div role="tabpanel" aria-labelledby={`tab-${ui.tab}`}>
          <Async state={state}>
            {(r) => (
              <TabBody
                tab={ui.tab}
                r={r}
                metric={ui.metric}
                setMetric={(m) => update({ metric: m })}
                aliases={aliases}
                lang={lang}
              />
            )}
          </Async>
        </div>
      </Card>
    </div>
  );
}

function TabBody(props: {
  tab: AnalyticsTab;
  r: AnalyticsResponse;
  metric: UiState['metric'];
  setMetric: (m: UiState['metric']) => void;
  aliases: Map<string, string>;
  lang: 'en' | 'zh-CN';
}) {
  const t = useT();
  const { r, lang } = props;
  const metricSel = (
    <Select
      label={t('analytics.metric')}
      value={props.metric}
      onChange={props.setMetric}
      options={[
        { value: 'calls', label: t('metric.calls') },
        { value: 'tokens', label: t('metric.tokens') },
        { value: 'cost', label: t('metric.cost') },
      ]}
    />
  );
  switch (props.tab) {
    case 'overview': {
      if (!r.summary) return <Empty />;
      const c = r.summary_comparison;
      const delta = (cur: number, prev: number | undefined) =>
        prev ? formatPercent((cur - prev) / prev) : '—';
      return (
        <>
          <SummaryCards s={r.summary} compact />
          {c && (
            <div class="stats-grid">
              <Stat
                label={t('analytics.vsPrevious', { what: t('metric.requests') })}
                value={delta(r.summary.total_calls, c.total_calls)}
              />
              <Stat
                label={t('analytics.vsPrevious', { what: t('metric.tokens') })}
                value={delta(r.summary.total_tokens, c.total_tokens)}
              />
              <Stat
                label={t('analytics.vsPrevious', { what: t('metric.cost') })}
                value={delta(r.summary.total_cost, c.total_cost)}
              />
            </div>
          )}
          <h3 class="sub">{t('analytics.anomalies')}</h3>
          {r.anomaly_points?.length ? (
            <Table
              caption={t('analytics.anomalies')}
              rows={r.anomaly_points}
              rowKey={(a) => String(a.bucket_ms)}
              columns={[
                {
                  key: 'when',
                  label: t('metric.time'),
                  render: (a) => a.label || formatDateTime(a.bucket_ms),
                },
                {
                  key: 'sev',
                  label: t('analytics.severity'),
                  render: (a) => (
                    <Badge tone={a.severity === 'high' ? 'bad' : 'warn'}>{a.severity}</Badge>
                  ),
                },
                {
                  key: 'metrics',
                  label: t('analytics.metrics'),
                  render: (a) => a.metric_keys.join(', '),
                },
                {
                  key: 'calls',
                  label: t('metric.calls'),
                  render: (a) => formatNumber(a.calls, lang),
                  numeric: true,
                },
                {
                  key: 'cost',
                  label: t('metric.cost'),
                  render: (a) => formatUsd(a.cost),
                  numeric: true,
                },
              ]}
            />
          ) : (
            <Empty label={t('analytics.noAnomalies')} />
          )}
        </>
      );
    }
    case 'trends': {
      const tl = r.timeline ?? [];
      if (!tl.length) return <Empty />;
      const val = (p: (typeof tl)[number]) =>
        props.metric === 'calls' ? p.calls : props.metric === 'tokens' ? p.tokens : (p.cost ?? 0);
      return (
        <>
          {metricSel}
          <Chart
            label={t('analytics.tab.trends')}
            option={{
              tooltip: {
                trigger: 'axis',
                valueFormatter: (v: number) =>
                  props.metric === 'cost' ? formatUsd(v) : formatNumber(v, lang),
              },
              grid: { left: 56, right: 16, top: 16, bottom: 32 },
              xAxis: {
                type: 'category',
                data: tl.map((p) => p.label || bucketLabel(p.bucket_ms, r.granularity)),
              },
              yAxis: {
                type: 'value',
                axisLabel: {
                  formatter: (v: number) =>
                    props.metric === 'cost' ? formatUsd(v) : formatCompact(v),
                },
              },
              series: [
                {
                  type: 'line',
                  areaStyle: { opacity: 0.15 },
                  smooth: true,
                  data: tl.map(val),
                  color: kPalette[0],
                },
              ],
            }}
          />
        </>
      );
    }
    case 'models': {
      const rows = r.model_stats ?? [];
      if (!rows.length) return <Empty />;
      const top = [...rows].sort((a, b) => b.calls - a.calls).slice(0, 10);
      return (
        <>
          <Chart
            label={t('analytics.tab.models')}
            height={Math.max(160, top.length * 28)}
            option={{
              tooltip: { trigger: 'axis' },
              grid: { left: 140, right: 24, top: 8, bottom: 24 },
              xAxis: { type: 'value' },
              yAxis: { type: 'category', inverse: true, data: top.map((m) => m.model) },
              series: [{ type: 'bar', data: top.map((m) => m.calls), color: kPalette[4] }],
            }}
          />
          <Table
            caption={t('analytics.tab.models')}
            rows={rows}
            rowKey={(m) => m.model}
            columns={[
              { key: 'model', label: t('metric.model'), render: (m) => m.model },
              {
                key: 'calls',
                label: t('metric.calls'),
                render: (m) => formatNumber(m.calls, lang),
                numeric: true,
              },
              {
                key: 'rate',
                label: t('metric.successRate'),
                render: (m) => formatPercent(m.success_rate),
                numeric: true,
              },
              {
                key: 'tokens',
                label: t('metric.tokens'),
                render: (m) => formatCompact(m.total_tokens),
                numeric: true,
              },
              {
                key: 'cache',
                label: t('metric.cacheHitRate'),
                render: (m) => formatPercent(m.cache_hit_rate),
                numeric: true,
              },
              {
                key: 'cost',
                label: t('metric.cost'),
                render: (m) => formatUsd(m.cost),
                numeric: true,
              },
            ]}
          />
        </>
      );
    }
    case 'apiKeys':
    case 'credentials': {
      const rows: StatRow[] =
        props.tab === 'apiKeys'
          ? (r.api_key_stats ?? [])
          : r.credential_stats?.length
            ? r.credential_stats
            : accountRows(r);
      if (!rows.length) return <Empty />;
      return (
        <Table
          caption={t(`analytics.tab.${props.tab}`)}
          rows={rows}
          rowKey={(x, i) => `${x.api_key_hash ?? x.credential_id ?? x.auth_index ?? ''}-${i}`}
          columns={[
            {
              key: 'who',
              label: props.tab === 'apiKeys' ? t('metric.apiKey') : t('metric.credential'),
              render: (x) =>
                props.tab === 'apiKeys'
                  ? callerLabel(x.api_key_hash, props.aliases)
                  : x.auth_file_snapshot || identityLabel(x),
            },
            {
              key: 'calls',
              label: t('metric.calls'),
              render: (x) => formatNumber(x.calls, lang),
              numeric: true,
            },
            {
              key: 'rate',
              label: t('metric.successRate'),
              render: (x) => formatPercent(x.success_rate),
              numeric: true,
            },
            {
              key: 'tokens',
              label: t('metric.tokens'),
              render: (x) => formatCompact(x.total_tokens),
              numeric: true,
            },
            {
              key: 'cost',
              label: t('metric.cost'),
              render: (x) => formatUsd(x.cost),
              numeric: true,
            },
            {
              key: 'lat',
              label: t('metric.avgLatency'),
              render: (x) => formatDuration(x.average_latency_ms),
              numeric: true,
            },
            {
              key: 'seen',
              label: t('metric.lastSeen'),
              render: (x) => formatDateTime(x.last_seen_ms),
            },
          ]}
        />
      );
    }
    case 'heatmap': {
      const cells = r.heatmap ?? [];
      if (!cells.length) return <Empty />;
      const val = (c: (typeof cells)[number]) =>
        props.metric === 'calls' ? c.calls : props.metric === 'tokens' ? c.tokens : c.cost;
      const max = Math.max(1, ...cells.map(val));
      return (
        <>
          {metricSel}
          <Chart
            label={t('analytics.tab.heatmap')}
            height={300}
            option={{
              tooltip: { position: 'top' },
              grid: { left: 56, right: 16, top: 8, bottom: 64 },
              xAxis: {
                type: 'category',
                data: Array.from({ length: 24 }, (_, h) => String(h).padStart(2, '0')),
              },
              yAxis: { type: 'category', data: kWeekdays[lang] },
              visualMap: {
                min: 0,
                max,
                calculable: true,
                orient: 'horizontal',
                left: 'center',
                bottom: 0,
              },
              series: [{ type: 'heatmap', data: cells.map((c) => [c.hour, c.weekday, val(c)]) }],
            }}
          />
        </>
      );
    }
  }
}
