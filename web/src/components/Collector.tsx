// Collector status card from GET /status (cpamp-api.md §6). What to show is decided by the
// pure collectorView() (collectorView.ts, unit-tested); this file only renders it.
import { useT } from '../i18n';
import { useStore } from '../lib/store';
import { langStore } from '../i18n';
import type { ServerStatus } from '../api/manager';
import { Badge, Card, Notice, Progress } from './ui';
import { collectorView } from './collectorView';

export { collectorTone } from './collectorView';

export function CollectorCard(props: { status: ServerStatus }) {
  const t = useT();
  const lang = useStore(langStore);
  const view = collectorView(props.status, Date.now(), lang, t);
  return (
    <Card title={t('collector.title')} actions={<Badge tone={view.tone}>{view.state}</Badge>}>
      <dl class="facts">
        {view.facts.map((f) => [
          <dt key={`${f.id}-dt`}>{f.label}</dt>,
          <dd key={`${f.id}-dd`} class={f.class} title={f.title} data-testid={`collector-${f.id}`}>
            {f.value}
            {f.meter && (
              <Progress value={f.meter.ratio} label={f.label} compact tone={f.meter.tone} />
            )}
          </dd>,
        ])}
      </dl>
      {view.notices.map((n) => (
        <Notice key={n.id} tone={n.tone} testId={n.testId}>
          {n.title && <strong>{n.title}</strong>}
          {n.lines.map((line, i) => (
            <div key={i}>{line}</div>
          ))}
        </Notice>
      ))}
    </Card>
  );
}
