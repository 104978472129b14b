// Model prices (A.4.10): table editor (PUT replaces the whole map), sync from public sources
// with candidate confirmation, usage summary; plus API-key aliases (hash computed locally).
import { useState } from 'preact/hooks';
import { useT, langStore, type MessageKey } from '../i18n';
import { useStore } from '../lib/store';
import { useSession } from '../lib/session';
import { refreshStore } from '../lib/appState';
import { useAsync } from '../lib/useAsync';
import { formatDateTime, formatNumber } from '../lib/format';
import { apiKeyHash } from '../lib/sha256';
import {
  deleteAlias,
  getAliases,
  getPriceUsageSummary,
  getPrices,
  putAliases,
  putPrices,
  syncPrices,
  validatePrice,
  type ModelPrice,
  type PriceMap,
  type SyncResult,
} from '../api/prices';
import { getApiKeys } from '../api/cpa';
import { Async, Card, Empty, ErrorBox, Notice, Table, Tabs } from '../components/ui';
import { maskSecret } from '../lib/format';

type Tab = 'prices' | 'aliases';
const kFields = ['prompt', 'completion', 'cacheRead', 'cacheCreation'] as const;

function num(s: string): number {
  return s.trim() === '' ? 0 : Number(s);
}

function PriceEditor() {
  const t = useT();
  const lang = useStore(langStore);
  const session = useSession();
  const tick = useStore(refreshStore);
  const prices = useAsync(() => getPrices(session), [tick]);
  const usage = useAsync(() => getPriceUsageSummary(session), [tick]);
  const [draft, setDraft] = useState({
    model: '',
    prompt: '',
    completion: '',
    cacheRead: '',
    cacheCreation: '',
  });
  const [msg, setMsg] = useState<{ tone: 'good' | 'error'; text: string } | null>(null);
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const [sync, setSync] = useState<SyncResult | null>(null);

  const save = async (next: PriceMap) => {
    setBusy(true);
    setError(undefined);
    try {
      await putPrices(session, next);
      setMsg({ tone: 'good', text: t('prices.saved') });
      prices.reload();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  const add = () => {
    const current = prices.data ?? {};
    const p: Partial<ModelPrice> = {
      prompt: num(draft.prompt),
      completion: num(draft.completion),
      cacheRead: num(draft.cacheRead),
      cacheCreation: num(draft.cacheCreation),
    };
    const invalid = validatePrice(draft.model, p, Object.keys(current));
    if (invalid) {
      setMsg({ tone: 'error', text: t(invalid as MessageKey) });
      return;
    }
    void save({
      ...current,
      [draft.model.trim()]: { ...p, cache: p.cacheRead, source: 'manual' } as ModelPrice,
    });
    setDraft({ model: '', prompt: '', completion: '', cacheRead: '', cacheCreation: '' });
  };

  const remove = (model: string) => {
    void save(Object.fromEntries(Object.entries(prices.data ?? {}).filter(([m]) => m !== model)));
  };

  const runSync = async () => {
    setBusy(true);
    setError(undefined);
    try {
      const r = await syncPrices(session);
      setSync(r);
      prices.reload();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  const unpriced = (usage.data?.models ?? []).filter((m) => prices.data && !prices.data[m.model]);

  return (
    <>
      <div class="toolbar">
        <button
          type="button"
          class="btn btn-primary"
          disabled={busy}
          onClick={() => void runSync()}
        >
          {busy ? t('common.working') : t('prices.sync')}
        </button>
        <span class="muted small">{t('prices.unit')}</span>
      </div>
      {msg && <Notice tone={msg.tone}>{msg.text}</Notice>}
      {error !== undefined && <ErrorBox error={error} />}
      {sync && (
        <Notice tone="info">
          {t('prices.syncResult', {
            imported: sync.imported,
            unmatched: sync.unmatched?.length ?? 0,
            source: sync.source,
          })}
          {sync.candidates?.length ? (
            <ul class="candidates">
              {sync.candidates.map((c) => (
                <li key={c.model}>
                  <strong>{c.model}</strong>:{' '}
                  {c.candidates.slice(0, 3).map((cand) => (
                    <button
                      key={cand.sourceModelId}
                      type="button"
                      class="btn btn-small"
                      title={cand.reason}
                      onClick={() =>
                        void save({
                          ...(prices.data ?? {}),
                          [c.model]: {
                            ...cand.price,
                            source: cand.price.source ?? sync.source,
                            sourceModelId: cand.sourceModelId,
                          },
                        })
                      }
                    >
                      {t('prices.useCandidate', {
                        id: cand.sourceModelId,
                        score: Math.round(cand.score * 100),
                      })}
                    </button>
                  ))}
                </li>
              ))}
            </ul>
          ) : null}
        </Notice>
      )}
      <Async state={prices}>
        {(p) => {
          const rows = Object.entries(p).sort(([a], [b]) => a.localeCompare(b));
          return rows.length ? (
            <Table
              caption={t('prices.title')}
              rows={rows}
              rowKey={([m]) => m}
              columns={[
                { key: 'model', label: t('metric.model'), render: ([m]) => m },
                ...kFields.map((f) => ({
                  key: f,
                  label: t(`prices.field.${f}`),
                  render: ([, v]: [string, ModelPrice]) => formatNumber(v[f] ?? 0, lang),
                  numeric: true,
                })),
                { key: 'source', label: t('prices.source'), render: ([, v]) => v.source ?? '—' },
                {
                  key: 'updated',
                  label: t('prices.updated'),
                  render: ([, v]) => formatDateTime(v.syncedAtMs || v.updatedAtMs),
                },
                {
                  key: 'act',
                  label: t('common.actions'),
                  render: ([m]) => (
                    <button
                      type="button"
                      class="btn btn-small btn-danger"
                      disabled={busy}
                      onClick={() => remove(m)}
                      aria-label={t('prices.deleteAria', { model: m })}
                    >
                      {t('common.delete')}
                    </button>
                  ),
                },
              ]}
            />
          ) : (
            <Empty label={t('prices.empty')} />
          );
        }}
      </Async>
      <form
        class="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          add();
        }}
        aria-label={t('prices.add')}
      >
        <label class="field">
          <span>{t('metric.model')}</span>
          <input
            value={draft.model}
            onInput={(e) => setDraft({ ...draft, model: e.currentTarget.value })}
            list="unpriced-models"
          />
        </label>
        <datalist id="unpriced-models">
          {unpriced.map((m) => (
            <option key={m.model} value={m.model} />
          ))}
        </datalist>
        {kFields.map((f) => (
          <label class="field" key={f}>
            <span>{t(`prices.field.${f}`)}</span>
            <input
              type="number"
              min={0}
              step="any"
              inputMode="decimal"
              value={draft[f]}
              onInput={(e) => setDraft({ ...draft, [f]: e.currentTarget.value })}
            />
          </label>
        ))}
        <button type="submit" class="btn btn-primary" disabled={busy}>
          {t('prices.add')}
        </button>
      </form>
      <h3 class="sub">{t('prices.usage')}</h3>
      <Async state={usage} isEmpty={(u) => !u.models.length}>
        {(u) => (
          <Table
            caption={t('prices.usage')}
            rows={u.models}
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
                key: 'priced',
                label: t('prices.priced'),
                render: (m) => (prices.data?.[m.model] ? '✓' : t('prices.missing')),
              },
            ]}
          />
        )}
      </Async>
    </>
  );
}

function AliasEditor() {
  const t = useT();
  const session = useSession();
  const tick = useStore(refreshStore);
  const aliases = useAsync(() => getAliases(session), [tick]);
  const keys = useAsync(() => getApiKeys(session), [tick]);
  const [key, setKey] = useState('');
  const [alias, setAlias] = useState('');
  const [error, setError] = useState<unknown>(undefined);
  const [msg, setMsg] = useState('');

  const submit = async () => {
    setError(undefined);
    setMsg('');
    if (!key.trim() || !alias.trim()) {
      setMsg(t('aliases.required'));
      return;
    }
    try {
      await putAliases(session, [{ apiKeyHash: apiKeyHash(key), alias: alias.trim() }]);
      setKey('');
      setAlias('');
      aliases.reload();
    } catch (e) {
      setError(e);
    }
  };
  const remove = async (hash: string) => {
    try {
      await deleteAlias(session, hash);
      aliases.reload();
    } catch (e) {
      setError(e);
    }
  };
  const knownKeys = new Map((keys.data ?? []).map((k) => [apiKeyHash(k), k]));

  return (
    <>
      <p class="muted">{t('aliases.intro')}</p>
      {error !== undefined && <ErrorBox error={error} />}
      {msg && <Notice tone="error">{msg}</Notice>}
      <Async state={aliases} isEmpty={(a) => !a.length} emptyLabel={t('aliases.empty')}>
        {(items) => (
          <Table
            caption={t('aliases.title')}
            rows={items}
            rowKey={(a) => a.apiKeyHash}
            columns={[
              { key: 'alias', label: t('aliases.alias'), render: (a) => a.alias },
              {
                key: 'key',
                label: t('metric.apiKey'),
                render: (a) =>
                  knownKeys.has(a.apiKeyHash) ? (
                    maskSecret(knownKeys.get(a.apiKeyHash))
                  ) : (
                    <span class="muted" title={a.apiKeyHash}>
                      {a.apiKeyHash.slice(0, 12)}…
                    </span>
                  ),
              },
              {
                key: 'updated',
                label: t('prices.updated'),
                render: (a) => formatDateTime(a.updatedAtMs),
              },
              {
                key: 'act',
                label: t('common.actions'),
                render: (a) => (
                  <button
                    type="button"
                    class="btn btn-small btn-danger"
                    onClick={() => void remove(a.apiKeyHash)}
                  >
                    {t('common.delete')}
                  </button>
                ),
              },
            ]}
          />
        )}
      </Async>
      <form
        class="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          void submit();
        }}
        aria-label={t('aliases.add')}
      >
        <label class="field">
          <span>{t('metric.apiKey')}</span>
          {keys.data?.length ? (
            <select value={key} onChange={(e) => setKey(e.currentTarget.value)}>
              <option value="">{t('aliases.pickKey')}</option>
              {keys.data.map((k) => (
                <option key={k} value={k}>
                  {maskSecret(k)}
                </option>
              ))}
            </select>
          ) : (
            <input
              type="password"
              autoComplete="off"
              value={key}
              onInput={(e) => setKey(e.currentTarget.value)}
            />
          )}
        </label>
        <label class="field">
          <span>{t('aliases.alias')}</span>
          <input maxLength={120} value={alias} onInput={(e) => setAlias(e.currentTarget.value)} />
        </label>
        <button type="submit" class="btn btn-primary">
          {t('aliases.add')}
        </button>
      </form>
    </>
  );
}

export function PricesPage() {
  const t = useT();
  const [tab, setTab] = useState<Tab>('prices');
  return (
    <div class="page" data-testid="page-prices">
      <h1>{t('nav.prices')}</h1>
      <Card>
        <Tabs
          label={t('nav.prices')}
          active={tab}
          onChange={setTab}
          tabs={[
            { key: 'prices', label: t('prices.title') },
            { key: 'aliases', label: t('aliases.title') },
          ]}
        />
        <div role="tabpanel" aria-labelledby={`tab-${tab}`}>
          {tab === 'prices' ? <PriceEditor /> : <AliasEditor />}
        </div>
      </Card>
    </div>
  );
}
