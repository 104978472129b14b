// Shared building blocks: cards, stat tiles, state boxes, tables, tabs, selects, progress.
import type { ComponentChildren, JSX } from 'preact';
import { useT } from '../i18n';
import { describeError } from '../api/errors';
import { ApiError } from '../api/client';
import type { AsyncState } from '../lib/useAsync';

export function Card(props: {
  title?: ComponentChildren;
  actions?: ComponentChildren;
  children: ComponentChildren;
  class?: string;
  id?: string;
}) {
  return (
    <section class={`card ${props.class ?? ''}`} id={props.id}>
      {(props.title || props.actions) && (
        <header class="card-head">
          {props.title && <h2>{props.title}</h2>}
          {props.actions && <div class="card-actions">{props.actions}</div>}
        </header>
      )}
      {props.children}
    </section>
  );
}

export function Stat(props: {
  label: string;
  value: ComponentChildren;
  hint?: ComponentChildren;
  tone?: string;
  /** Exact numeric value behind a compact display (exposed as data-value, and as a tooltip). */
  raw?: number;
  testId?: string;
}) {
  return (
    <div
      class={`stat ${props.tone ? `tone-${props.tone}` : ''}`}
      data-testid={props.testId}
      data-value={props.raw}
      title={props.raw !== undefined ? String(props.raw) : undefined}
    >
      <div class="stat-label">{props.label}</div>
      <div class="stat-value">{props.value}</div>
      {props.hint !== undefined && <div class="stat-hint">{props.hint}</div>}
    </div>
  );
}

export function Loading(props: { label?: string }) {
  const t = useT();
  return (
    <div class="state state-loading" role="status" aria-live="polite">
      <span class="spinner" aria-hidden="true" />
      {props.label ?? t('common.loading')}
    </div>
  );
}

export function Empty(props: { label?: string }) {
  const t = useT();
  return <div class="state state-empty">{props.label ?? t('common.empty')}</div>;
}

export function ErrorBox(props: { error: unknown; onRetry?: () => void }) {
  const t = useT();
  const d = describeError(props.error);
  if (props.error instanceof ApiError && props.error.notAvailable) {
    return (
      <div class="state state-na" role="note">
        <strong>{t('error.not_available')}</strong>
        <div class="muted">{t('error.not_available_hint', { status: props.error.status })}</div>
      </div>
    );
  }
  return (
    <div class="state state-error" role="alert">
      <strong>{t(d.key, d.params)}</strong>
      {d.detail && <div class="muted detail">{d.detail}</div>}
      {props.onRetry && (
        <button type="button" class="btn btn-small" onClick={props.onRetry}>
          {t('common.retry')}
        </button>
      )}
    </div>
  );
}

/** Renders loading / error / empty / content for an async state. */
export function Async<T>(props: {
  state: AsyncState<T>;
  isEmpty?: (v: T) => boolean;
  emptyLabel?: string;
  children: (v: T) => ComponentChildren;
}) {
  const { state } = props;
  if (state.error !== undefined) return <ErrorBox error={state.error} onRetry={state.reload} />;
  if (state.data === undefined)
    return state.loading ? <Loading /> : <Empty label={props.emptyLabel} />;
  if (props.isEmpty?.(state.data)) return <Empty label={props.emptyLabel} />;
  return <>{props.children(state.data)}</>;
}

export interface Column<R> {
  key: string;
  label: string;
  render: (r: R) => ComponentChildren;
  numeric?: boolean;
}

export function Table<R>(props: {
  columns: Column<R>[];
  rows: R[];
  rowKey: (r: R, i: number) => string;
  caption?: string;
  /** Makes rows clickable (and keyboard-activatable with Enter/Space). */
  onRowClick?: (r: R) => void;
  rowClass?: (r: R) => string;
}) {
  const click = props.onRowClick;
  return (
    <div class="table-wrap" tabIndex={0} role="region" aria-label={props.caption ?? 'table'}>
      <table>
        {props.caption && <caption class="sr-only">{props.caption}</caption>}
        <thead>
          <tr>
            {props.columns.map((c) => (
              <th key={c.key} class={c.numeric ? 'num' : ''} scope="col">
                {c.label}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {props.rows.map((r, i) => (
            <tr
              key={props.rowKey(r, i)}
              class={[click ? 'clickable' : '', props.rowClass?.(r) ?? ''].join(' ').trim()}
              {...(click
                ? {
                    tabIndex: 0,
                    onClick: () => click(r),
                    onKeyDown: (e: KeyboardEvent) => {
                      if (e.key === 'Enter' || e.key === ' ') {
                        e.preventDefault();
                        click(r);
                      }
                    },
                  }
                : {})}
            >
              {props.columns.map((c) => (
                <td key={c.key} class={c.numeric ? 'num' : ''} data-label={c.label}>
                  {c.render(r)}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function Tabs<K extends string>(props: {
  tabs: { key: K; label: string }[];
  active: K;
  onChange: (k: K) => void;
  label: string;
}) {
  const onKey = (e: JSX.TargetedKeyboardEvent<HTMLButtonElement>, idx: number) => {
    if (e.key !== 'ArrowRight' && e.key !== 'ArrowLeft') return;
    const next = (idx + (e.key === 'ArrowRight' ? 1 : -1) + props.tabs.length) % props.tabs.length;
    const tab = props.tabs[next];
    if (tab) {
      props.onChange(tab.key);
      const el = e.currentTarget.parentElement?.children[next] as HTMLElement | undefined;
      el?.focus();
    }
  };
  return (
    <div class="tabs" role="tablist" aria-label={props.label}>
      {props.tabs.map((tab, i) => (
        <button
          key={tab.key}
          type="button"
          role="tab"
          id={`tab-${tab.key}`}
          aria-selected={tab.key === props.active}
          tabIndex={tab.key === props.active ? 0 : -1}
          class={tab.key === props.active ? 'tab active' : 'tab'}
          onClick={() => props.onChange(tab.key)}
          onKeyDown={(e) => onKey(e, i)}
        >
          {tab.label}
        </button>
      ))}
    </div>
  );
}

export function Select<V extends string>(props: {
  label: string;
  value: V;
  options: { value: V; label: string }[];
  onChange: (v: V) => void;
  id?: string;
}) {
  const id = props.id ?? `sel-${props.label.replace(/\W+/g, '-').toLowerCase()}`;
  return (
    <label class="field field-inline" for={id}>
      <span>{props.label}</span>
      <select
        id={id}
        value={props.value}
        onChange={(e) => props.onChange(e.currentTarget.value as V)}
      >
        {props.options.map((o) => (
          <option key={o.value} value={o.value}>
            {o.label}
          </option>
        ))}
      </select>
    </label>
  );
}

/** Progress bar; `compact` is a thin bar without the percent text (the caller shows it). */
export function Progress(props: {
  value: number;
  label: string;
  compact?: boolean;
  tone?: string;
}) {
  const pct = Math.round(Math.max(0, Math.min(1, props.value)) * 100);
  const cls = [
    'progress',
    props.compact ? 'progress-compact' : '',
    props.tone ? `tone-${props.tone}` : '',
  ]
    .filter(Boolean)
    .join(' ');
  return (
    <div
      class={cls}
      role="progressbar"
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={pct}
      aria-label={props.label}
    >
      <div class="progress-bar" style={{ width: `${pct}%` }} />
      {!props.compact && <span class="progress-text">{pct}%</span>}
    </div>
  );
}

export function Badge(props: { tone: string; children: ComponentChildren }) {
  return <span class={`badge tone-${props.tone}`}>{props.children}</span>;
}

export function Notice(props: {
  tone: 'info' | 'warn' | 'error' | 'good';
  children: ComponentChildren;
  testId?: string;
}) {
  return (
    <div
      class={`notice tone-${props.tone}`}
      role={props.tone === 'error' ? 'alert' : 'status'}
      data-testid={props.testId}
    >
      {props.children}
    </div>
  );
}
