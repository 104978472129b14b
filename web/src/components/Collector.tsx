// Collector status card from GET /status (cpamp-api.md §6).
import { useT } from '../i18n';
import { useStore } from '../lib/store';
import { langStore } from '../i18n';
import { formatDateTime, formatNumber, formatRelative } from '../lib/format';
import type { ServerStatus } from '../api/manager';
import { Badge, Card } from './ui';

export function collectorTone(state: string | undefined): string {
  if (state === 'running') return 'good';
  if (state === 'starting') return 'warn';
  if (state === 'error') return 'bad';
  return 'empty';
}

export function CollectorCard(props: { status: ServerStatus }) {
  const t = useT();
  const lang = useStore(langStore);
  const c = props.status.collector;
  const now = Date.now();
  return (
    <Card
      title={t('collector.title')}
      actions={
        <Badge tone={collectorTone(c?.collector)}>{c?.collector ?? t('collector.unknown')}</Badge>
      }
    >
      <dl class="facts">
        <dt>{t('collector.mode')}</dt>
        <dd>
          {c?.mode || '—'} / {c?.transport || '—'}
        </dd>
        <dt>{t('collector.queue')}</dt>
        <dd>{c?.queue || '—'}</dd>
        <dt>{t('collector.upstream')}</dt>
        <dd class="break">{c?.upstream || '—'}</dd>
        <dt>{t('collector.events')}</dt>
        <dd>{formatNumber(props.status.events, lang)}</dd>
        <dt>{t('collector.deadLetters')}</dt>
        <dd>{formatNumber(props.status.deadLetters, lang)}</dd>
        <dt>{t('collector.lastConsumed')}</dt>
        <dd title={formatDateTime(c?.lastConsumedAt)}>
          {formatRelative(c?.lastConsumedAt, now, lang)}
        </dd>
        <dt>{t('collector.lastInserted')}</dt>
        <dd title={formatDateTime(c?.lastInsertedAt)}>
          {formatRelative(c?.lastInsertedAt, now, lang)}
        </dd>
        <dt>{t('collector.inserted')}</dt>
        <dd>
          {formatNumber(c?.totalInserted, lang)} / {t('collector.skipped')}{' '}
          {formatNumber(c?.totalSkipped, lang)}
        </dd>
      </dl>
      {c?.lastError && (props.status.events ?? 0) > 0 && (
        <div class="notice tone-error">{t('collector.lastError', { error: c.lastError })}</div>
      )}
      {!props.status.events && (
        <div
          class={`notice tone-${c?.collector === 'running' ? 'info' : 'warn'}`}
          data-testid="collector-empty"
        >
          <strong>{t('collector.emptyTitle')}</strong>
          <div>
            {c?.lastError
              ? t('collector.emptyError', { error: c.lastError })
              : c?.collector === 'running' || c?.collector === 'starting'
                ? t('collector.emptyRunning')
                : t('collector.emptyStopped', { state: c?.collector ?? t('collector.unknown') })}
          </div>
        </div>
      )}
    </Card>
  );
}
