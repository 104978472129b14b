// Request monitoring (panel spec A.4.8): toolbar + filters, summary cards, timeline, tabs
// (accounts, API keys, realtime events with keyset paging). Each tab fetches its own block.
import { Fragment } from 'preact';
import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import { Link } from 'wouter-preact';
import { useT, langStore } from '../i18n';
import { useStore, safeStorage } from '../lib/store';
import { useSession } from '../lib/session';
import { refreshStore } from '../lib/appState';
import { useAsync, useInterval } from '../lib/useAsync';
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
import { fromLocalInput, resolveRange, toLocalInput, type MonitoringRange } from '../lib/ranges';
import {
  accountRows,
  postAnalytics,
  type AnalyticsFilters,
  type AnalyticsRequest,
  type EventRow,
  type StatRow,
  type Summary,
} from '../api/monitoring';
import { identityLabel } from '../api/dashboard';
import {
  Async,
  Badge,
  Card,
  Empty,
  ErrorBox,
  Loading,
  Select,
  Stat,
  Table,
  Tabs,
} from '../components/ui';
import { Chart, kPalette } from '../components/Chart';
import { useAliasMap, callerLabel } from '../lib/aliases';
import { maskAccount, maskEmails, redactSecrets } from '../lib/redact';

type Tab = 'accounts' | 'apiKeys' | 'events';
type StatusFilter = 'all' | 'success' | 'failed';

interface UiState {
  range: MonitoringRange;
  refreshMs: number;
  tab: Tab;
  maskAccounts: boolean;
}

const kUiKey = 'monitoring.centerUiState';

function loadUi(): UiState {
  try {
    const v = JSON.parse(safeStorage.get(kUiKey) ?? '{}') as Partial<UiState>;
    return {
      range: v.range ?? 'today',
      refreshMs: v.refreshMs ?? 0,
      tab: v.tab ?? 'accounts',
      maskAccounts: v.maskAccounts ?? false,
    };
  } catch {
    return { range: 'today', refreshMs: 0, tab: 'accounts', maskAccounts: false };
  }
}

export function statusFilters(
  s: StatusFilter,
): Pick<AnalyticsFilters, 'include_failed' | 'failed_only'> {
  if (s === 'success') return { include_failed: false, failed_only: false };
  if (s === 'failed') return { include_failed: true, failed_only: true };
  return { include_failed: true, failed_only: false };
}

/** Summary stat cards; `compact` hides the fields a compact-profile summary leaves at 0. */
export function SummaryCards(props: { s: Summary; compact?: boolean }) {
  const t = useT();
  const lang = useStore(langStore);
  const s = props.s;
  return (
    <div class="stats-grid" data-testid="summary-cards">
      <Stat
        label={t('metric.requests')}
        testId="summary-requests"
        raw={s.total_calls}
        value={formatCompact(s.total_calls)}
        hint={`${formatNumber(s.success_calls, lang)} ✓ · ${formatNumber(s.failure_calls, lang)} ✗`}
      />
      <Stat label={t('metric.successRate')} value={formatPercent(s.success_rate)} />
      <Stat
        label={t('metric.tokens')}
        value={formatCompact(s.total_tokens)}
        hint={`${t('metric.input')} ${formatCompact(s.input_tokens)} · ${t('metric.output')} ${formatCompact(s.output_tokens)}`}
      />
      <Stat label={t('metric.cost')} value={formatUsd(s.total_cost)} />
      <Stat
        label={t('metric.avgLatency')}
        value={formatDuration(s.average_latency_ms)}
        hint={s.p95_latency_ms ? `P95 ${formatDuration(s.p95_latency_ms)}` : undefined}
      />
      {props.compact ? (
        <Stat
          label={t('metric.cacheHitRate')}
          value={formatPercent(s.cache_hit_rate ?? 0)}
          hint={`${t('metric.zeroToken')} ${formatNumber(s.zero_token_calls, lang)}`}
        />
      ) : (
        <>
          <Stat
            label={t('metric.rpm')}
            value={formatNumber(s.rpm_30m, lang)}
            hint={`${t('metric.tpm')} ${formatCompact(s.tpm_30m)}`}
          />
          <Stat
            label={t('metric.avgDaily')}
            value={formatCompact(s.avg_daily_requests)}
            hint={`${formatCompact(s.avg_daily_tokens)} ${t('metric.tokens')}`}
          />
          <Stat
            label={t('metric.tasks')}
            value={formatNumber(s.approx_tasks, lang)}
            hint={formatPercent(s.approx_task_success_rate)}
          />
        </>
      )}
    </div>
  );
}

function statColumns(
  t: ReturnType<typeof useT>,
  lang: 'en' | 'zh-CN',
  first: { label: string; render: (r: StatRow) => preact.ComponentChildren },
) {
  return [
    { key: 'who', label: first.label, render: first.render },
    {
      key: 'calls',
      label: t('metric.calls'),
      render: (r: StatRow) => formatNumber(r.calls, lang),
      numeric: true,
    },
    {
      key: 'rate',
      label: t('metric.successRate'),
      render: (r: StatRow) => formatPercent(r.success_rate),
      numeric: true,
    },
    {
      key: 'tokens',
      label: t('metric.tokens'),
      render: (r: StatRow) => formatCompact(r.total_tokens),
      numeric: true,
    },
    {
      key: 'cost',
      label: t('metric.cost'),
      render: (r: StatRow) => formatUsd(r.cost),
      numeric: true,
    },
    {
      key: 'lat',
      label: t('metric.avgLatency'),
      render: (r: StatRow) => formatDuration(r.average_latency_ms),
      numeric: true,
    },
    {
      key: 'seen',
      label: t('metric.lastSeen'),
      render: (r: StatRow) => formatDateTime(r.last_seen_ms),
    },
  ];
}

export function MonitoringPage() {
  const t = useT();
  const lang = useStore(langStore);
  const session = useSession();
  const tick = useStore(refreshStore);
  const aliases = useAliasMap(session, true);
  const [ui, setUi] = useState<UiState>(loadUi);
  const [custom, setCustom] = useState(() => ({ from: Date.now() - 86_400_000, to: Date.now() }));
  const [search, setSearch] = useState('');
  const [appliedSearch, setAppliedSearch] = useState('');
  const [model, setModel] = useState('');
  const [provider, setProvider] = useState('');
  const [account, setAccount] = useState('');
  const [apiKey, setApiKey] = useState('');
  const [status, setStatus] = useState<StatusFilter>('all');
  const [autoTick, setAutoTick] = useState(0);
  const [cursor, setCursor] = useState<{ ms: number; id: number }[]>([]);
  const [detail, setDetail] = useState<EventRow | null>(null);
  const closeDetail = useCallback(() => setDetail(null), []);
  const who = (r: Parameters<typeof identityLabel>[0]) =>
    ui.maskAccounts ? maskAccount(identityLabel(r)) : identityLabel(r);

  const update = (patch: Partial<UiState>) => {
    const next = { ...ui, ...patch };
    setUi(next);
    safeStorage.set(kUiKey, JSON.stringify(next));
  };
  // Auto refresh runs only while the browser tab is visible (useInterval skips hidden ticks);
  // coming back to the tab refreshes at once instead of waiting for the next period.
  useInterval(() => setAutoTick((n) => n + 1), ui.refreshMs);
  useEffect(() => {
    if (ui.refreshMs <= 0) return undefined;
    const onVisible = () => {
      if (document.visibilityState === 'visible') setAutoTick((n) => n + 1);
    };
    document.addEventListener('visibilitychange', onVisible);
    return () => document.removeEventListener('visibilitychange', onVisible);
  }, [ui.refreshMs]);

  const base = useMemo((): Omit<AnalyticsRequest, 'include'> => {
    const now = Date.now();
    const { from, to } = resolveRange(ui.range, now, custom);
    const filters: AnalyticsFilters = { ...statusFilters(status) };
    if (model) filters.models = [model];
    if (provider) filters.providers = [provider];
    if (account) filters.accounts = [account];
    if (apiKey) filters.api_key_hashes = [apiKey];
    return {
      from_ms: from,
      to_ms: to,
      now_ms: now,
      time_zone: browserTimeZone(),
      search_query: appliedSearch,
      filters,
    };
  }, [ui.range, custom, status, model, provider, account, apiKey, appliedSearch, tick, autoTick]);

  const main = useAsync(
    () =>
      postAnalytics(session, {
        ...base,
        include: { summary: true, timeline: true, model_share: true, granularity: 'auto' },
      }),
    [base],
  );
  const options = useAsync(
    () =>
      postAnalytics(session, {
        from_ms: base.from_ms,
        to_ms: base.to_ms,
        time_zone: base.time_zone,
        include: { filter_options: true },
      }),
    [base.from_ms, base.to_ms, tick],
  );
  const before = cursor[cursor.length - 1];
  const tabState = useAsync(
    () =>
      postAnalytics(session, {
        ...base,
        include:
          ui.tab === 'accounts'
            ? { account_stats: true, channel_share: true }
            : ui.tab === 'apiKeys'
              ? { api_key_stats: true }
              : {
                  events_page: {
                    limit: 50,
                    before_ms: before?.ms ?? null,
                    before_id: before?.id ?? null,
                  },
                },
      }),
    [base, ui.tab, before?.ms, before?.id],
  );

  const fo = options.data?.filter_options;
  const opt = (list: string[] | undefined) => [
    { value: '', label: t('common.all') },
    ...[...new Set(list ?? [])].sort().map((v) => ({ value: v, label: v })),
  ];
  const modelList = fo?.models ?? fo?.model_stats?.map((m) => m.model);
  const accountList = fo?.accounts ?? fo?.account_stats?.map((a) => identityLabel(a));
  const accountOptions = [
    { value: '', label: t('common.all') },
    ...[...new Set(accountList ?? [])]
      .sort()
      .map((v) => ({ value: v, label: ui.maskAccounts ? maskAccount(v) : v })),
  ];
  const keyList =
    fo?.api_key_hashes ?? fo?.api_key_stats?.map((a) => a.api_key_hash ?? '').filter(Boolean);

  const timelineOption = useMemo(() => {
    const tl = main.data?.timeline;
    if (!tl) return null;
    const gran = main.data?.granularity ?? 'hour';
    return {
      tooltip: { trigger: 'axis' },
      legend: { bottom: 0 },
      grid: { left: 48, right: 48, top: 16, bottom: 48 },
      xAxis: { type: 'category', data: tl.map((p) => p.label || bucketLabel(p.bucket_ms, gran)) },
      yAxis: [
        { type: 'value' },
        { type: 'value', axisLabel: { formatter: (v: number) => formatCompact(v) } },
      ],
      series: [
        {
          name: t('metric.success'),
          type: 'bar',
          stack: 'c',
          data: tl.map((p) => p.success),
          color: kPalette[1],
        },
        {
          name: t('metric.failure'),
          type: 'bar',
          stack: 'c',
          data: tl.map((p) => p.failure),
          color: kPalette[3],
        },
        {
          name: t('metric.tokens'),
          type: 'line',
          yAxisIndex: 1,
          data: tl.map((p) => p.tokens),
          color: kPalette[0],
          smooth: true,
        },
      ],
    };
  }, [main.data, lang]);

  const resetPaging = () => setCursor([]);

  return (
    <div class="page" data-testid="page-monitoring">
      <h1>{t('nav.monitoring')}</h1>
      <div class="toolbar" role="search">
        <Select
          label={t('filter.range')}
          value={ui.range}
          onChange={(v) => {
            update({ range: v });
            resetPaging();
          }}
          options={(['today', '7d', '14d', '30d', 'all', 'custom'] as MonitoringRange[]).map(
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
          label={t('filter.autoRefresh')}
          value={String(ui.refreshMs)}
          onChange={(v) => update({ refreshMs: Number(v) })}
          options={[0, 5000, 10000, 30000, 60000, 300000].map((ms) => ({
            value: String(ms),
            label: ms === 0 ? t('common.off') : ms < 60000 ? `${ms / 1000} s` : `${ms / 60000} min`,
          }))}
        />
        <form
          class="field field-inline search"
          onSubmit={(e) => {
            e.preventDefault();
            setAppliedSearch(search.trim());
            resetPaging();
          }}
        >
          <label for="mon-search" class="sr-only">
            {t('filter.search')}
          </label>
          <input
            id="mon-search"
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
      <div class="toolbar">
        <Select
          label={t('metric.model')}
          value={model}
          onChange={(v) => {
            setModel(v);
            resetPaging();
          }}
          options={opt(modelList)}
        />
        <Select
          label={t('metric.provider')}
          value={provider}
          onChange={(v) => {
            setProvider(v);
            resetPaging();
          }}
          options={opt(fo?.providers)}
        />
        <Select
          label={t('metric.account')}
          value={account}
          onChange={(v) => {
            setAccount(v);
            resetPaging();
          }}
          options={accountOptions}
        />
        <Select
          label={t('metric.apiKey')}
          value={apiKey}
          onChange={(v) => {
            setApiKey(v);
            resetPaging();
          }}
          options={[
            { value: '', label: t('common.all') },
            ...[...new Set(keyList ?? [])].map((h) => ({
              value: h,
              label: callerLabel(h, aliases),
            })),
          ]}
        />
        <Select
          label={t('metric.status')}
          value={status}
          onChange={(v) => {
            setStatus(v);
            resetPaging();
          }}
          options={[
            { value: 'all', label: t('common.all') },
            { value: 'success', label: t('metric.success') },
            { value: 'failed', label: t('metric.failure') },
          ]}
        />
        <label class="field field-inline check">
          <input
            type="checkbox"
            data-testid="mask-accounts"
            checked={ui.maskAccounts}
            onChange={(e) => update({ maskAccounts: e.currentTarget.checked })}
          />
          <span>{t('monitoring.maskAccounts')}</span>
        </label>
        <div class="toolbar-actions">
          <Link href="/usage-io" class="btn btn-small">
            {t('nav.importExport')}
          </Link>
          <Link href="/model-prices" class="btn btn-small">
            {t('monitoring.priceSettings')}
          </Link>
        </div>
      </div>
      {main.error !== undefined ? (
        <ErrorBox error={main.error} onRetry={main.reload} />
      ) : !main.data ? (
        <Loading />
      ) : (
        <>
          {main.data.summary && <SummaryCards s={main.data.summary} />}
          <Card title={t('monitoring.timeline')}>
            {main.data.timeline?.length && timelineOption ? (
              <Chart option={timelineOption} label={t('monitoring.timeline')} />
            ) : (
              <Empty />
            )}
          </Card>
        </>
      )}
      <Card>
        <Tabs
          label={t('monitoring.tabs')}
          active={ui.tab}
          onChange={(k) => {
            update({ tab: k });
            resetPaging();
          }}
          tabs={[
            { key: 'accounts', label: t('monitoring.tab.accounts') },
            { key: 'apiKeys', label: t('monitoring.tab.apiKeys') },
            { key: 'events', label: t('monitoring.tab.events') },
          ]}
        />
        <div role="tabpanel" aria-labelledby={`tab-${ui.tab}`}>
          <Async state={tabState}>
            {(r) => {
              if (ui.tab === 'accounts') {
                const rows = accountRows(r);
                return rows.length ? (
                  <Table
                    caption={t('monitoring.tab.accounts')}
                    rows={rows}
                    rowKey={(x, i) => `${x.auth_index ?? ''}-${i}`}
                    columns={statColumns(t, lang, {
                      label: t('metric.account'),
                      render: (x) => (
                        <>
                          {who(x)}{' '}
                          {x.auth_provider_snapshot && (
                            <Badge tone="empty">{x.auth_provider_snapshot}</Badge>
                          )}
                        </>
                      ),
                    })}
                  />
                ) : (
                  <Empty />
                );
              }
              if (ui.tab === 'apiKeys') {
                const rows = r.api_key_stats ?? [];
                return rows.length ? (
                  <Table
                    caption={t('monitoring.tab.apiKeys')}
                    rows={rows}
                    rowKey={(x, i) => `${x.api_key_hash ?? ''}-${i}`}
                    columns={statColumns(t, lang, {
                      label: t('metric.apiKey'),
                      render: (x) => (
                        <span title={x.api_key_hash}>{callerLabel(x.api_key_hash, aliases)}</span>
                      ),
                    })}
                  />
                ) : (
                  <Empty />
                );
              }
              const page = r.events;
              if (!page || !page.items.length) return <Empty />;
              return (
                <>
                  <div class="muted small" data-testid="events-total" data-value={page.total_count}>
                    {t('monitoring.totalEvents', { count: formatNumber(page.total_count, lang) })}
                  </div>
                  <EventsTable rows={page.items} aliases={aliases} who={who} onOpen={setDetail} />
                  <div class="pager">
                    <button
                      type="button"
                      class="btn btn-small"
                      disabled={!cursor.length}
                      onClick={() => setCursor(cursor.slice(0, -1))}
                    >
                      {t('common.prev')}
                    </button>
                    <button
                      type="button"
                      class="btn btn-small"
                      disabled={!page.has_more}
                      onClick={() =>
                        setCursor([...cursor, { ms: page.next_before_ms, id: page.next_before_id }])
                      }
                    >
                      {t('common.next')}
                    </button>
                  </div>
                </>
              );
            }}
          </Async>
        </div>
      </Card>
      {detail && (
        <EventDrawer
          ev={detail}
          who={who}
          aliases={aliases}
          mask={ui.maskAccounts}
          onClose={closeDetail}
        />
      )}
    </div>
  );
}

function EventsTable(props: {
  rows: EventRow[];
  aliases: Map<string, string>;
  who: (r: EventRow) => string;
  onOpen: (r: EventRow) => void;
}) {
  const t = useT();
  const lang = useStore(langStore);
  return (
    <Table
      caption={t('monitoring.tab.events')}
      rows={props.rows}
      rowKey={(r, i) => `${r.event_hash}-${i}`}
      onRowClick={props.onOpen}
      rowClass={(r) => (r.failed ? 'row-failed' : '')}
      columns={[
        { key: 'time', label: t('metric.time'), render: (r) => formatDateTime(r.timestamp_ms) },
        { key: 'src', label: t('metric.credential'), render: (r) => props.who(r) },
        {
          key: 'caller',
          label: t('metric.caller'),
          render: (r) => callerLabel(r.api_key_hash, props.aliases),
        },
        {
          key: 'model',
          label: t('metric.model'),
          render: (r) => (
            <span title={r.resolved_model}>
              {r.analytics_model || r.model}
              {r.reasoning_effort ? ` (${r.reasoning_effort})` : ''}
            </span>
          ),
        },
        {
          key: 'status',
          label: t('metric.status'),
          render: (r) =>
            r.failed ? (
              <Badge tone="bad">{r.fail_status_code ?? '✗'}</Badge>
            ) : (
              <Badge tone="good">✓</Badge>
            ),
        },
        {
          key: 'lat',
          label: t('metric.latency'),
          render: (r) => formatDuration(r.latency_ms),
          numeric: true,
        },
        {
          key: 'ttft',
          label: 'TTFT',
          render: (r) => (r.ttft_ms ? formatDuration(r.ttft_ms) : '—'),
          numeric: true,
        },
        {
          key: 'tps',
          label: 'TPS',
          render: (r) =>
            r.latency_ms > 0 && r.output_tokens > 0
              ? formatNumber(Math.round((r.output_tokens * 1000) / r.latency_ms), lang)
              : '—',
          numeric: true,
        },
        {
          key: 'tokens',
          label: t('metric.tokens'),
          render: (r) => (
            <span
              title={`in ${r.input_tokens} / out ${r.output_tokens} / reasoning ${r.reasoning_tokens}`}
            >
              {formatCompact(r.total_tokens)}
            </span>
          ),
          numeric: true,
        },
      ]}
    />
  );
}

/** Side drawer with every field of one event and its (redacted) failure evidence. */
function EventDrawer(props: {
  ev: EventRow;
  who: (r: EventRow) => string;
  aliases: Map<string, string>;
  mask: boolean;
  onClose: () => void;
}) {
  const t = useT();
  const lang = useStore(langStore);
  const ev = props.ev;
  const closeRef = useRef<HTMLButtonElement>(null);
  // Layout effect: the Escape handler and focus are in place before the drawer is painted.
  useLayoutEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') props.onClose();
    };
    document.addEventListener('keydown', onKey);
    const previous = document.activeElement as HTMLElement | null;
    closeRef.current?.focus();
    return () => {
      document.removeEventListener('keydown', onKey);
      previous?.focus();
    };
  }, [props.onClose]);
  const m = (v: string | undefined) => (v ? (props.mask ? maskAccount(v) : v) : '—');
  const facts: [string, preact.ComponentChildren][] = [
    [t('metric.time'), formatDateTime(ev.timestamp_ms)],
    [t('monitoring.detail.requestId'), ev.request_id ?? '—'],
    [t('monitoring.detail.endpoint'), ev.endpoint || `${ev.method} ${ev.path}`],
    [t('metric.model'), ev.model],
    [t('monitoring.detail.resolvedModel'), ev.resolved_model ?? '—'],
    [t('monitoring.detail.reasoning'), ev.reasoning_effort ?? '—'],
    [t('monitoring.detail.serviceTier'), ev.service_tier ?? '—'],
    [t('metric.credential'), props.who(ev)],
    [t('metric.provider'), ev.auth_provider_snapshot || '—'],
    [t('monitoring.detail.authFile'), m(ev.auth_file_snapshot)],
    [t('monitoring.detail.authIndex'), ev.auth_index || '—'],
    [t('monitoring.detail.executor'), ev.executor_type ?? '—'],
    [t('metric.caller'), callerLabel(ev.api_key_hash, props.aliases)],
    [t('monitoring.detail.clientIp'), ev.client_ip ?? '—'],
    [t('monitoring.detail.userAgent'), ev.user_agent ?? '—'],
    [t('metric.latency'), formatDuration(ev.latency_ms)],
    ['TTFT', ev.ttft_ms ? formatDuration(ev.ttft_ms) : '—'],
    [
      t('metric.tokens'),
      `${formatNumber(ev.total_tokens, lang)} (${t('metric.input')} ${formatNumber(ev.input_tokens, lang)} · ${t('metric.output')} ${formatNumber(ev.output_tokens, lang)} · ${t('metric.reasoning')} ${formatNumber(ev.reasoning_tokens, lang)} · cache ${formatNumber(ev.cache_read_tokens, lang)}/${formatNumber(ev.cache_creation_tokens, lang)})`,
    ],
  ];
  const evidence = ev.fail_summary ? maskEmails(redactSecrets(ev.fail_summary)) : '';
  const meta = ev.response_metadata
    ? maskEmails(redactSecrets(JSON.stringify(ev.response_metadata, null, 2)))
    : '';
  return (
    <div class="drawer-backdrop" onClick={props.onClose}>
      <aside
        class="drawer"
        role="dialog"
        aria-modal="true"
        aria-label={t('monitoring.detail.title')}
        data-testid="event-drawer"
        onClick={(e) => e.stopPropagation()}
      >
        <header class="drawer-head">
          <h2>{t('monitoring.detail.title')}</h2>
          {ev.failed ? (
            <Badge tone="bad">{ev.fail_status_code ?? t('metric.failure')}</Badge>
          ) : (
            <Badge tone="good">{t('metric.success')}</Badge>
          )}
          <button
            type="button"
            class="btn btn-small"
            ref={closeRef}
            onClick={props.onClose}
            aria-label={t('common.close')}
          >
            ✕
          </button>
        </header>
        <dl class="facts">
          {facts.map(([k, v]) => (
            <Fragment key={k}>
              <dt>{k}</dt>
              <dd class="break">{v}</dd>
            </Fragment>
          ))}
        </dl>
        {ev.failed && (
          <section data-testid="fail-evidence">
            <h3 class="sub">{t('monitoring.detail.evidence')}</h3>
            <dl class="facts">
              <dt>{t('metric.status')}</dt>
              <dd>{ev.fail_status_code ?? '—'}</dd>
              {ev.header_error_kind && (
                <>
                  <dt>{t('monitoring.detail.errorKind')}</dt>
                  <dd>
                    {ev.header_error_kind}
                    {ev.header_error_code ? ` / ${ev.header_error_code}` : ''}
                  </dd>
                </>
              )}
              {ev.header_trace_id && (
                <>
                  <dt>{t('monitoring.detail.traceId')}</dt>
                  <dd class="break">{ev.header_trace_id}</dd>
                </>
              )}
            </dl>
            <pre class="evidence">{evidence || '—'}</pre>
            <p class="muted small">{t('monitoring.detail.redactedNote')}</p>
          </section>
        )}
        {meta && (
          <details>
            <summary>{t('monitoring.detail.headers')}</summary>
            <pre class="evidence">{meta}</pre>
          </details>
        )}
      </aside>
    </div>
  );
}
