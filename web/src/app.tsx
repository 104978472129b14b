// App shell: mode detection, session gate, hash router, sidebar + header.
import { useEffect, useState } from 'preact/hooks';
import { Link, Redirect, Route, Router, Switch, useLocation } from 'wouter-preact';
import { useHashLocation } from 'wouter-preact/use-hash-location';
import { useStore } from './lib/store';
import { logout, sessionStore } from './lib/session';
import {
  computeFeatures,
  detectMode,
  featuresStore,
  modeStore,
  triggerRefresh,
} from './lib/appState';
import { useT, type MessageKey } from './i18n';
import { LangThemeControls } from './components/LangTheme';
import { Loading } from './components/ui';
import { LoginPage } from './pages/Login';
import { DashboardPage } from './pages/Dashboard';
import { MonitoringPage } from './pages/Monitoring';
import { AnalyticsPage } from './pages/Analytics';
import { PricesPage } from './pages/Prices';
import { ImportExportPage } from './pages/ImportExport';
import { ConfigPage } from './pages/Config';
import { SystemPage } from './pages/System';

interface NavItem {
  path: string;
  label: MessageKey;
  icon: string;
  manager?: boolean;
  monitoring?: boolean;
}

const kNav: NavItem[] = [
  { path: '/dashboard', label: 'nav.dashboard', icon: '▦' },
  { path: '/usage-analytics', label: 'nav.analytics', icon: '◔', manager: true, monitoring: true },
  { path: '/monitoring', label: 'nav.monitoring', icon: '◉', manager: true, monitoring: true },
  { path: '/model-prices', label: 'nav.prices', icon: '$', manager: true },
  { path: '/usage-io', label: 'nav.importExport', icon: '⇅', manager: true },
  { path: '/config', label: 'nav.config', icon: '⚙' },
  { path: '/system', label: 'nav.system', icon: '◇' },
];

function Shell() {
  const t = useT();
  const session = useStore(sessionStore);
  const features = useStore(featuresStore);
  const [location] = useLocation();
  const [drawer, setDrawer] = useState(false);

  useEffect(() => setDrawer(false), [location]);

  const visible = kNav.filter(
    (n) =>
      (!n.manager || features.manager) &&
      (!n.monitoring || features.monitoring !== 'monitoring_disabled'),
  );
  const gate = (item: string, el: preact.JSX.Element) => {
    const nav = kNav.find((n) => n.path === item);
    if (nav?.manager && !features.manager) return <Redirect to="/dashboard" />;
    if (nav?.monitoring && features.monitoring === 'monitoring_disabled')
      return <Redirect to="/config" />;
    return el;
  };

  return (
    <div class={`shell ${drawer ? 'drawer-open' : ''}`}>
      <a class="skip-link" href="#main">
        {t('common.skipToContent')}
      </a>
      <aside class="sidebar" aria-label={t('nav.label')}>
        <div class="brand">
          <span class="logo" aria-hidden="true">
            ◆
          </span>
          CPA Manager Plus
        </div>
        <nav>
          <ul>
            {visible.map((n) => (
              <li key={n.path}>
                <Link
                  href={n.path}
                  class={
                    location === n.path || (n.path === '/dashboard' && location === '/')
                      ? 'nav-link active'
                      : 'nav-link'
                  }
                  aria-current={location === n.path ? 'page' : undefined}
                >
                  <span class="nav-icon" aria-hidden="true">
                    {n.icon}
                  </span>
                  {t(n.label)}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <div class="sidebar-foot muted">
          {session?.mode === 'manager_embedded' ? t('mode.manager') : t('mode.external')}
        </div>
      </aside>
      <button
        type="button"
        class="scrim"
        aria-label={t('header.closeMenu')}
        tabIndex={drawer ? 0 : -1}
        onClick={() => setDrawer(false)}
      />
      <div class="main-col">
        <header class="topbar">
          <button
            type="button"
            class="btn btn-icon menu-btn"
            aria-label={t('header.menu')}
            aria-expanded={drawer}
            onClick={() => setDrawer(!drawer)}
          >
            ☰
          </button>
          <div class="topbar-title">
            {t(kNav.find((n) => n.path === location)?.label ?? 'nav.dashboard')}
          </div>
          <button
            type="button"
            class="btn btn-icon"
            onClick={triggerRefresh}
            aria-label={t('header.refresh')}
            title={t('header.refresh')}
          >
            ⟳
          </button>
          <LangThemeControls />
          <button type="button" class="btn btn-small" onClick={logout}>
            {t('header.logout')}
          </button>
        </header>
        {session?.recovery && (
          <div class="notice tone-warn banner">{t('login.recoveryBanner')}</div>
        )}
        <main id="main" tabIndex={-1}>
          <Switch>
            <Route path="/">
              <DashboardPage />
            </Route>
            <Route path="/dashboard">
              <DashboardPage />
            </Route>
            <Route path="/monitoring">{gate('/monitoring', <MonitoringPage />)}</Route>
            <Route path="/usage-analytics">{gate('/usage-analytics', <AnalyticsPage />)}</Route>
            <Route path="/model-prices">{gate('/model-prices', <PricesPage />)}</Route>
            <Route path="/monitoring/model-prices">
              <Redirect to="/model-prices" />
            </Route>
            <Route path="/usage-io">{gate('/usage-io', <ImportExportPage />)}</Route>
            <Route path="/config">
              <ConfigPage />
            </Route>
            <Route path="/settings">
              <Redirect to="/config" />
            </Route>
            <Route path="/system">
              <SystemPage />
            </Route>
            <Route path="/login">
              <Redirect to="/dashboard" />
            </Route>
            <Route>
              <div class="page">
                <h1>{t('common.notFound')}</h1>
                <Link href="/dashboard">{t('nav.dashboard')}</Link>
              </div>
            </Route>
          </Switch>
        </main>
      </div>
    </div>
  );
}

export function App() {
  const t = useT();
  const mode = useStore(modeStore);
  const session = useStore(sessionStore);

  useEffect(() => {
    void detectMode().then((m) => {
      const s = sessionStore.get();
      // A stored session whose mode does not match this page is discarded.
      if (s && (s.mode === 'manager_embedded') !== m.manager) logout();
    });
  }, []);

  useEffect(() => {
    void computeFeatures(session);
  }, [session]);

  if (mode.loading) {
    return (
      <div class="splash">
        <Loading label={t('login.detecting')} />
      </div>
    );
  }
  return <Router hook={useHashLocation}>{session ? <Shell /> : <LoginPage />}</Router>;
}
