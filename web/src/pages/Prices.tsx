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
  baseModelName,
  parseBulkPrices,
  priceFor,
  putPrices,
  syncPrices,
  validatePrice,
  withBasePrices,
  type ModelPrice,
  type PriceMap,
  type SyncResult,
} from '../api/prices';
import { getApiKeys } from '../api/cpa';
import { Async, Card, Empty, ErrorBox, Notice, Table, Tabs } from '../components/ui';
import { maskSecret } from '../lib/format';

type Tab = 'prices' | 'aliases';
const kFields = ['prompt', 'completion', 'cacheRead', 'cacheCreation'] as const;

function formatPrice(v: number, lang: string): string {
  return new Intl.NumberFormat(lang, { maximumFractionDigits: 6 }).format(v);
}

function num(s: string): number {
  return s.trim() === '' ? 0 : Number(s);
}

type Draft = {
  model: string;
  prompt: string;
  completion: string;
  cacheRead: string;
  cacheCreation: string;
};
const kEmptyDraft: Draft = {
  model: '',
  prompt: '',
  completion: '',
  cacheRead: '',
  cacheCreation: '',
};

function PriceEditor() {
  const t = useT();
  const lang = useStore(langStore);
  const session = useSession();
  const tick = useStore(refreshStore);
  const prices = useAsync(() => getPrices(session), [tick]);
  const usage = useAsync(() => getPriceUsageSummary(session), [tick]);
  const [draft, setDraft] = useState<Draft>(kEmptyDraft);
  const [editing, setEditing] = useState<string | null>(null);
  const [query, setQuery] = useState('');
  const [bulk, setBulk] = useState('');
  const [showBulk, setShowBulk] = useState(false);
  const [msg, setMsg] = useState<{ tone: 'good' | 'error'; text: string } | null>(null);
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const [sync, setSync] = useState<SyncResult | null>(null);
  const [syncScope, setSyncScope] = useState<'unpriced' | 'all'>('unpriced');
  const [showSync, setShowSync] = useState(false);

  const save = async (next: PriceMap, okText = t('prices.saved')) => {
    setBusy(true);
    setError(undefined);
    setMsg(null);
    try {
      await putPrices(session, next);
      setMsg({ tone: 'good', text: okText });
      prices.reload();
      return true;
    } catch (e) {
      setError(e);
      return false;
    } finally {
      setBusy(false);
    }
  };

  const submit = async () => {
    const current = prices.data ?? {};
    const vals = {
      prompt: num(draft.prompt),
      completion: num(draft.completion),
      cacheRead: num(draft.cacheRead),
      cacheCreation: num(draft.cacheCreation),
    };
    const model = draft.model.trim();
    const others = Object.keys(current).filter((m) => m !== editing);
    const invalid = validatePrice(model, vals, others);
    if (invalid) {
      setMsg({ tone: 'error', text: t(invalid as MessageKey) });
      return;
    }
    const next = Object.fromEntries(Object.entries(current).filter(([m]) => m !== editing));
    next[model] = withBasePrices(current[editing ?? model], vals);
    if (await save(next)) {
      setDraft(kEmptyDraft);
      setEditing(null);
    }
  };

  const startEdit = (model: string, v: ModelPrice) => {
    setEditing(model);
    setMsg(null);
    setDraft({
      model,
      prompt: String(v.prompt ?? 0),
      completion: String(v.completion ?? 0),
      cacheRead: String(v.cacheRead ?? v.cache ?? 0),
      cacheCreation: String(v.cacheCreation ?? 0),
    });
    document.getElementById('price-model')?.focus();
  };

  const remove = (model: string) => {
    void save(Object.fromEntries(Object.entries(prices.data ?? {}).filter(([m]) => m !== model)));
  };

  const applyBulk = async () => {
    const { prices: parsed, badLines } = parseBulkPrices(bulk);
    const count = Object.keys(parsed).length;
    if (badLines.length || !count) {
      setMsg({
        tone: 'error',
        text: count
          ? t('prices.bulkBadLines', { lines: badLines.join(', ') })
          : t('prices.bulkNothing'),
      });
      return;
    }
    const current = prices.data ?? {};
    const next = { ...current };
    for (const [m, v] of Object.entries(parsed))
      next[m] = withBasePrices(current[m], {
        prompt: v.prompt,
        completion: v.completion,
        cacheRead: v.cacheRead ?? 0,
        cacheCreation: v.cacheCreation ?? 0,
      });
    if (await save(next, t('prices.bulkSaved', { count }))) {
      setBulk('');
      setShowBulk(false);
    }
  };

  const callsByModel = new Map((usage.data?.models ?? []).map((m) => [m.model, m.calls]));
  const unpriced = (usage.data?.models ?? []).filter(
    (m) => prices.data && !priceFor(prices.data, m.model),
  );
  const syncModels = syncScope === 'unpriced' ? unpriced.map((m) => m.model) : [];

  const runSync = async () => {
    setBusy(true);
    setError(undefined);
    setMsg(null);
    setSync(null);
    try {
      const r = await syncPrices(session, syncModels);
      setSync(r);
      prices.reload();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  const q = query.trim().toLowerCase();
  const match = (m: string) => !q || m.toLowerCase().includes(q);

  return (
    <>
      <div class="toolbar">
        <label class="field field-inline">
          <span class="sr-only">{t('prices.search')}</span>
          <input
            type="search"
            class="search-input"
            data-testid="price-search"
            placeholder={t('prices.search')}
            value={query}
            onInput={(e) => setQuery(e.currentTarget.value)}
          />
        </label>
        <button type="button" class="btn" onClick={() => setShowBulk(!showBulk)}>
          {t('prices.bulk')}
        </button>
        <button
          type="button"
          class="btn"
          data-testid="sync-open"
          onClick={() => setShowSync(!showSync)}
        >
          {t('prices.sync')}
        </button>
        <span class="muted small">{t('prices.unit')}</span>
      </div>
      {msg && <Notice tone={msg.tone}>{msg.text}</Notice>}
      {error !== undefined && <ErrorBox error={error} />}
      {showSync && (
        <div class="notice tone-info" data-testid="sync-preview">
          <p>{t('prices.syncIntro')}</p>
          <div class="toolbar">
            <label class="field field-inline check">
              <input
                type="radio"
                name="sync-scope"
                checked={syncScope === 'unpriced'}
                onChange={() => setSyncScope('unpriced')}
              />
              <span>{t('prices.syncUnpriced', { count: unpriced.length })}</span>
            </label>
            <label class="field field-inline check">
              <input
                type="radio"
                name="sync-scope"
                checked={syncScope === 'all'}
                onChange={() => setSyncScope('all')}
              />
              <span>{t('prices.syncAll')}</span>
            </label>
            <button
              type="button"
              class="btn btn-primary"
              data-testid="sync-run"
              disabled={busy}
              onClick={() => void runSync()}
            >
              {busy ? t('common.working') : t('prices.syncRun')}
            </button>
          </div>
          {syncScope === 'unpriced' && syncModels.length > 0 && (
            <div class="muted small">{syncModels.slice(0, 30).join(', ')}</div>
          )}
          {sync && (
            <SyncReport
              r={sync}
              onPick={(next) => void save({ ...(prices.data ?? {}), ...next })}
            />
          )}
        </div>
      )}
      {showBulk && (
        <div class="notice tone-info">
          <label class="field">
            <span>{t('prices.bulkHint')}</span>
            <textarea
              class="bulk"
              data-testid="price-bulk"
              value={bulk}
              placeholder={'gpt-5, 1.25, 10, 0.125\nclaude-sonnet-4-5, 3, 15, 0.3, 3.75'}
              onInput={(e) => setBulk(e.currentTarget.value)}
            />
          </label>
          <button
            type="button"
            class="btn btn-primary"
            disabled={busy || !bulk.trim()}
            onClick={() => void applyBulk()}
          >
            {t('prices.bulkApply')}
          </button>
        </div>
      )}
      <Async state={prices}>
        {(p) => {
          const rows = Object.entries(p)
            .filter(([m]) => match(m))
            .sort(([a], [b]) => a.localeCompare(b));
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
                  render: ([, v]: [string, ModelPrice]) =>
                    formatPrice(
                      f === 'cacheRead' ? (v.cacheRead ?? v.cache ?? 0) : (v[f] ?? 0),
                      lang,
                    ),
                  numeric: true,
                })),
                {
                  key: 'calls',
                  label: t('metric.calls'),
                  render: ([m]) => formatNumber(callsByModel.get(m) ?? 0, lang),
                  numeric: true,
                },
                { key: 'source', label: t('prices.source'), render: ([, v]) => v.source ?? '—' },
                {
                  key: 'updated',
                  label: t('prices.updated'),
                  render: ([, v]) => formatDateTime(v.syncedAtMs || v.updatedAtMs),
                },
                {
                  key: 'act',
                  label: t('common.actions'),
                  render: ([m, v]) => (
                    <span class="row-actions">
                      <button
                        type="button"
                        class="btn btn-small"
                        disabled={busy}
                        onClick={() => startEdit(m, v)}
                        aria-label={t('prices.editAria', { model: m })}
                      >
                        {t('common.edit')}
                      </button>{' '}
                      <button
                        type="button"
                        class="btn btn-small btn-danger"
                        disabled={busy}
                        onClick={() => remove(m)}
                        aria-label={t('prices.deleteAria', { model: m })}
                      >
                        {t('common.delete')}
                      </button>
                    </span>
                  ),
                },
              ]}
            />
          ) : (
            <Empty label={q ? t('prices.noMatch') : t('prices.empty')} />
          );
        }}
      </Async>
      <form
        class="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          void submit();
        }}
        aria-label={editing ? t('prices.editTitle', { model: editing }) : t('prices.add')}
      >
        <label class="field">
          <span>{t('metric.model')}</span>
          <input
            id="price-model"
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
              id={`price-${f}`}
              type="number"
              min={0}
              step="any"
              inputMode="decimal"
              value={draft[f]}
              onInput={(e) => setDraft({ ...draft, [f]: e.currentTarget.value })}
            />
          </label>
        ))}
        <button type="submit" class="btn btn-primary" disabled={busy} data-testid="price-submit">
          {editing ? t('common.save') : t('prices.add')}
        </button>
        {editing && (
          <button
            type="button"
            class="btn"
            onClick={() => {
              setEditing(null);
              setDraft(kEmptyDraft);
            }}
          >
            {t('common.cancel')}
          </button>
        )}
      </form>
      <h3 class="sub">{t('prices.usage')}</h3>
      <Async state={usage} isEmpty={(u) => !u.models.length}>
        {(u) => (
          <>
            {u.truncated && (
              <div class="muted small">
                {t('prices.usageSampled', {
                  sampled: formatNumber(u.sampled_events, lang),
                  total: formatNumber(u.total_events, lang),
                })}
              </div>
            )}
            <Table
              caption={t('prices.usage')}
              rows={u.models.filter((m) => match(m.model))}
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
                  render: (m) =>
                    priceFor(prices.data, m.model) ? (
                      prices.data?.[m.model] ? (
                        '✓'
                      ) : (
                        `✓ ${baseModelName(m.model)}`
                      )
                    ) : (
                      <button
                        type="button"
                        class="btn btn-small"
                        onClick={() => {
                          setEditing(null);
                          setDraft({ ...kEmptyDraft, model: m.model });
                          document.getElementById('price-prompt')?.focus();
                        }}
                      >
                        {t('prices.missing')} · {t('prices.add')}
                      </button>
                    ),
                },
              ]}
            />
          </>
        )}
      </Async>
    </>
  );
}

/** What a sync did: per-source outcome, imported / unmatched / preserved models, candidates. */
function SyncReport(props: { r: SyncResult; onPick: (p: PriceMap) => void }) {
  const t = useT();
  const r = props.r;
  return (
    <div data-testid="sync-report">
      <p>
        {t('prices.syncResult', {
          imported: r.imported,
          unmatched: r.unmatched?.length ?? 0,
          source: r.source,
        })}
        {r.proxyUsed ? ` ${t('prices.syncProxy')}` : ''}
      </p>
      {r.sourceResults?.length ? (
        <ul>
          {r.sourceResults.map((s) => (
            <li key={s.source}>
              <strong>{s.source}</strong>: {s.error ? s.error : `${s.models} models`}
            </li>
          ))}
        </ul>
      ) : null}
      {r.matched && Object.keys(r.matched).length > 0 && (
        <div class="small">
          {t('prices.syncMatched')}: {Object.keys(r.matched).join(', ')}
        </div>
      )}
      {r.unmatched?.length ? (
        <div class="small">
          {t('prices.syncUnmatched')}: {r.unmatched.join(', ')}
        </div>
      ) : null}
      {r.preserved?.length ? (
        <div class="small">
          {t('prices.syncPreserved')}: {r.preserved.join(', ')}
        </div>
      ) : null}
      {r.candidates?.length ? (
        <ul class="candidates">
          {r.candidates.map((c) => (
            <li key={c.model}>
              <strong>{c.model}</strong>:{' '}
              {c.candidates.slice(0, 3).map((cand) => (
                <button
                  key={cand.sourceModelId}
                  type="button"
                  class="btn btn-small"
                  title={cand.reason}
                  onClick={() =>
                    props.onPick({
                      [c.model]: {
                        ...cand.price,
                        source: cand.price.source ?? r.source,
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
    </div>
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
