// Login page: Manager Server admin-key login, first-run setup wizard, or pure CPA panel login.
import { useState } from 'preact/hooks';
import type { JSX } from 'preact';
import { useT, type MessageKey } from '../i18n';
import { useStore, safeStorage } from '../lib/store';
import { detectMode, modeStore } from '../lib/appState';
import { currentPanelBase, defaultApiBase, normalizeApiBase, saveSession } from '../lib/session';
import { isSetupRequired, getManagerConfig, postSetup } from '../api/manager';
import { getCpaConfig } from '../api/cpa';
import { ApiError, type Connection } from '../api/client';
import { describeError } from '../api/errors';
import { LangThemeControls } from '../components/LangTheme';

const kLastCpaBase = 'cpa-manager-plus:last-cpa-base';
const kDefaultCpaBase = 'http://host.docker.internal:8317';

function ErrorText(props: { error: unknown }) {
  const t = useT();
  if (props.error === undefined) return null;
  const d = describeError(props.error);
  return (
    <div class="notice tone-error" role="alert" data-testid="login-error">
      <strong>{t(d.key, d.params)}</strong>
      {d.detail && <div class="muted detail">{d.detail}</div>}
    </div>
  );
}

function SecretInput(props: {
  id: string;
  label: string;
  value: string;
  onInput: (v: string) => void;
  autoFocus?: boolean;
  hint?: string;
}) {
  const t = useT();
  const [show, setShow] = useState(false);
  return (
    <div class="field">
      <label for={props.id}>{props.label}</label>
      <div class="input-row">
        <input
          id={props.id}
          type={show ? 'text' : 'password'}
          autoComplete="off"
          spellcheck={false}
          value={props.value}
          autoFocus={props.autoFocus}
          onInput={(e) => props.onInput(e.currentTarget.value)}
        />
        <button
          type="button"
          class="btn btn-small"
          aria-pressed={show}
          onClick={() => setShow(!show)}
        >
          {show ? t('common.hide') : t('common.show')}
        </button>
      </div>
      {props.hint && <div class="hint">{props.hint}</div>}
    </div>
  );
}

function go(path: string) {
  location.hash = `#${path}`;
}

/** Full-mode login: proxied CPA config probe, falling back to the manager config (recovery). */
async function managerLogin(adminKey: string, remember: boolean): Promise<void> {
  const conn: Connection = { apiBase: defaultApiBase(), credential: adminKey.trim() };
  let recovery = false;
  try {
    await getCpaConfig(conn);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) throw e;
    await getManagerConfig(conn);
    recovery = true;
  }
  saveSession({
    ...conn,
    mode: 'manager_embedded',
    panelBase: currentPanelBase(),
    remember,
    recovery,
  });
  go(recovery ? '/config' : '/dashboard');
}

type Step = 'admin' | 'connection' | 'cpaKey' | 'monitoring' | 'polling' | 'review';

/** Which wizard step a setup error code belongs to. */
export function stepForError(code: string): Step {
  switch (code) {
    case 'invalid_admin_key':
      return 'admin';
    case 'cpa_connection_required':
    case 'network_error':
    case 'timeout':
    case 'request_failed':
    case 'invalid_existing_management_key':
      return 'connection';
    case 'management_api_validation_failed':
    case 'management_api_config_failed':
    case 'invalid_management_key':
      return 'cpaKey';
    case 'poll_interval_exceeds_retention':
    case 'cpa_usage_retention_invalid':
      return 'polling';
    case 'enable_cpa_usage_statistics_failed':
      return 'monitoring';
    default:
      return 'review';
  }
}

function SetupWizard() {
  const t = useT();
  const info = useStore(modeStore).info;
  const [step, setStep] = useState<Step>('admin');
  const [adminKey, setAdminKey] = useState('');
  const [cpaBase, setCpaBase] = useState(safeStorage.get(kLastCpaBase) ?? kDefaultCpaBase);
  const [cpaKey, setCpaKey] = useState('');
  const [monitoring, setMonitoring] = useState(true);
  const [poll, setPoll] = useState('500');
  const [error, setError] = useState<unknown>(undefined);
  const [invalid, setInvalid] = useState<MessageKey | null>(null);
  const [busy, setBusy] = useState(false);

  const steps: Step[] = [
    'admin',
    'connection',
    'cpaKey',
    'monitoring',
    ...(monitoring ? (['polling'] as Step[]) : []),
    'review',
  ];
  const idx = steps.indexOf(step);
  const labels: Record<Step, MessageKey> = {
    admin: 'setup.step.admin',
    connection: 'setup.step.connection',
    cpaKey: 'setup.step.cpaKey',
    monitoring: 'setup.step.monitoring',
    polling: 'setup.step.polling',
    review: 'setup.step.review',
  };

  const validate = (s: Step): MessageKey | null => {
    if (s === 'admin' && !adminKey.trim()) return 'setup.invalid.adminKey';
    if (s === 'connection' && !cpaBase.trim()) return 'setup.invalid.cpaBase';
    if (s === 'cpaKey' && !cpaKey.trim()) return 'setup.invalid.cpaKey';
    if (s === 'polling' && !/^[1-9]\d*$/.test(poll.trim())) return 'setup.invalid.poll';
    return null;
  };

  const next = () => {
    const v = validate(step);
    setInvalid(v);
    if (v) return;
    const n = steps[idx + 1];
    if (n) setStep(n);
  };
  const back = () => {
    setInvalid(null);
    const p = steps[idx - 1];
    if (p) setStep(p);
  };

  const submit = async () => {
    for (const s of steps) {
      const v = validate(s);
      if (v) {
        setStep(s);
        setInvalid(v);
        return;
      }
    }
    setBusy(true);
    setError(undefined);
    const conn: Connection = { apiBase: defaultApiBase(), credential: adminKey.trim() };
    try {
      await postSetup(conn, {
        cpaBaseUrl: cpaBase.trim(),
        cpaManagementKey: cpaKey.trim(),
        ...(monitoring ? { pollIntervalMs: Number(poll.trim()) } : {}),
        ensureUsageStatisticsEnabled: monitoring,
        requestMonitoringEnabled: monitoring,
      });
      safeStorage.set(kLastCpaBase, cpaBase.trim());
      await detectMode();
      saveSession({
        ...conn,
        mode: 'manager_embedded',
        panelBase: currentPanelBase(),
        remember: true,
      });
      go('/dashboard');
    } catch (e) {
      setError(e);
      if (e instanceof ApiError) setStep(stepForError(e.code));
    } finally {
      setBusy(false);
    }
  };

  const onSubmit = (e: JSX.TargetedEvent<HTMLFormElement>) => {
    e.preventDefault();
    if (step === 'review') void submit();
    else next();
  };

  return (
    <form
      class="login-card wizard"
      onSubmit={onSubmit}
      aria-labelledby="setup-title"
      data-testid="setup-wizard"
    >
      <h1 id="setup-title">{t('setup.title')}</h1>
      <p class="muted">{t('setup.intro')}</p>
      {info?.hasHistoricalData && (
        <div class="notice tone-info">
          {t('setup.historical', { status: info.migrationStatus ?? '' })}
        </div>
      )}
      <ol class="stepper" aria-label={t('setup.progress')}>
        {steps.map((s, i) => (
          <li
            key={s}
            class={i < idx ? 'done' : i === idx ? 'current' : ''}
            aria-current={i === idx ? 'step' : undefined}
          >
            <span class="step-num">{i + 1}</span>
            <span class="step-label">{t(labels[s])}</span>
          </li>
        ))}
      </ol>
      <div class="wizard-body" data-step={step}>
        {step === 'admin' && (
          <SecretInput
            id="setup-admin-key"
            label={t('setup.adminKey')}
            value={adminKey}
            onInput={setAdminKey}
            autoFocus
            hint={t('setup.adminKeyHint')}
          />
        )}
        {step === 'connection' && (
          <div class="field">
            <label for="setup-cpa-url">{t('setup.cpaUrl')}</label>
            <input
              id="setup-cpa-url"
              type="url"
              value={cpaBase}
              autoFocus
              onInput={(e) => setCpaBase(e.currentTarget.value)}
            />
            <div class="hint">{t('setup.cpaUrlHint')}</div>
          </div>
        )}
        {step === 'cpaKey' && (
          <SecretInput
            id="setup-cpa-key"
            label={t('setup.cpaKey')}
            value={cpaKey}
            onInput={setCpaKey}
            autoFocus
            hint={t('setup.cpaKeyHint')}
          />
        )}
        {step === 'monitoring' && (
          <div class="field">
            <label class="check">
              <input
                id="setup-monitoring"
                type="checkbox"
                checked={monitoring}
                onChange={(e) => setMonitoring(e.currentTarget.checked)}
              />
              {t('setup.monitoring')}
            </label>
            <div class="hint">{t('setup.monitoringHint')}</div>
          </div>
        )}
        {step === 'polling' && (
          <div class="field">
            <label for="setup-poll">{t('setup.poll')}</label>
            <input
              id="setup-poll"
              type="number"
              min={1}
              step={1}
              inputMode="numeric"
              value={poll}
              autoFocus
              onInput={(e) => setPoll(e.currentTarget.value)}
            />
            <div class="hint">{t('setup.pollHint')}</div>
          </div>
        )}
        {step === 'review' && (
          <dl class="review">
            <dt>{t('setup.cpaUrl')}</dt>
            <dd>{cpaBase}</dd>
            <dt>{t('setup.cpaKey')}</dt>
            <dd>{'•'.repeat(Math.min(12, cpaKey.length))}</dd>
            <dt>{t('setup.monitoring')}</dt>
            <dd>{monitoring ? t('common.on') : t('common.off')}</dd>
            {monitoring && (
              <>
                <dt>{t('setup.poll')}</dt>
                <dd>{poll} ms</dd>
              </>
            )}
          </dl>
        )}
        {invalid && (
          <div class="notice tone-error" role="alert">
            {t(invalid)}
          </div>
        )}
        <ErrorText error={error} />
      </div>
      <div class="wizard-actions">
        <button type="button" class="btn" onClick={back} disabled={idx === 0 || busy}>
          {t('common.back')}
        </button>
        <button type="submit" class="btn btn-primary" disabled={busy} data-testid="wizard-next">
          {step === 'review'
            ? busy
              ? t('setup.submitting')
              : t('setup.submit')
            : t('common.next')}
        </button>
      </div>
    </form>
  );
}

function ManagerLogin() {
  const t = useT();
  const [key, setKey] = useState('');
  const [remember, setRemember] = useState(true);
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const submit = async (e: JSX.TargetedEvent<HTMLFormElement>) => {
    e.preventDefault();
    if (!key.trim()) {
      setError(new ApiError(401, 'invalid_admin_key', ''));
      return;
    }
    setBusy(true);
    setError(undefined);
    try {
      await managerLogin(key, remember);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="login-card" onSubmit={submit} data-testid="manager-login">
      <h1>{t('login.title')}</h1>
      <p class="muted">{t('login.managerIntro')}</p>
      <SecretInput
        id="login-admin-key"
        label={t('login.adminKey')}
        value={key}
        onInput={setKey}
        autoFocus
      />
      <label class="check">
        <input
          type="checkbox"
          checked={remember}
          onChange={(e) => setRemember(e.currentTarget.checked)}
        />
        {t('login.remember')}
      </label>
      <ErrorText error={error} />
      <button type="submit" class="btn btn-primary btn-block" disabled={busy}>
        {busy ? t('login.signingIn') : t('login.submit')}
      </button>
    </form>
  );
}

function ExternalLogin() {
  const t = useT();
  const [base, setBase] = useState(defaultApiBase());
  const [key, setKey] = useState('');
  const [remember, setRemember] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const submit = async (e: JSX.TargetedEvent<HTMLFormElement>) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const conn: Connection = { apiBase: normalizeApiBase(base), credential: key.trim() };
      await getCpaConfig(conn);
      saveSession({ ...conn, mode: 'external_panel', panelBase: currentPanelBase(), remember });
      go('/dashboard');
    } catch (err) {
      setError(
        err instanceof ApiError && err.status === 401
          ? new ApiError(401, 'invalid_management_key', err.message)
          : err,
      );
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="login-card" onSubmit={submit} data-testid="external-login">
      <h1>{t('login.title')}</h1>
      <p class="muted">{t('login.externalIntro')}</p>
      <div class="field">
        <label for="login-api-base">{t('login.apiBase')}</label>
        <input id="login-api-base" value={base} onInput={(e) => setBase(e.currentTarget.value)} />
        <div class="hint">{t('login.apiBaseHint')}</div>
      </div>
      <SecretInput
        id="login-cpa-key"
        label={t('login.cpaKey')}
        value={key}
        onInput={setKey}
        autoFocus
      />
      <label class="check">
        <input
          type="checkbox"
          checked={remember}
          onChange={(e) => setRemember(e.currentTarget.checked)}
        />
        {t('login.remember')}
      </label>
      <ErrorText error={error} />
      <button type="submit" class="btn btn-primary btn-block" disabled={busy}>
        {busy ? t('login.signingIn') : t('login.submit')}
      </button>
    </form>
  );
}

export function LoginPage() {
  const t = useT();
  const mode = useStore(modeStore);
  const setup = mode.manager && mode.info !== null && isSetupRequired(mode.info);
  return (
    <div class="login-page">
      <div class="login-top">
        <div class="brand">
          <span class="logo" aria-hidden="true">
            ◆
          </span>
          CPA Manager Plus
        </div>
        <LangThemeControls />
      </div>
      <main class="login-main" id="main">
        {mode.manager ? setup ? <SetupWizard /> : <ManagerLogin /> : <ExternalLogin />}
        <p class="muted small">{mode.manager ? t('mode.manager') : t('mode.external')}</p>
      </main>
    </div>
  );
}
