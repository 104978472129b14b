import { useStore } from '../lib/store';
import { setLang, langStore, useT } from '../i18n';
import { setTheme, themeStore, type ThemeChoice } from '../lib/theme';
import type { Lang } from '../lib/format';

export function LangThemeControls() {
  const t = useT();
  const lang = useStore(langStore);
  const theme = useStore(themeStore);
  return (
    <div class="controls">
      <label class="sr-only" for="lang-select">
        {t('header.language')}
      </label>
      <select
        id="lang-select"
        value={lang}
        onChange={(e) => setLang(e.currentTarget.value as Lang)}
        title={t('header.language')}
      >
        <option value="en">English</option>
        <option value="zh-CN">简体中文</option>
      </select>
      <label class="sr-only" for="theme-select">
        {t('header.theme')}
      </label>
      <select
        id="theme-select"
        value={theme}
        onChange={(e) => setTheme(e.currentTarget.value as ThemeChoice)}
        title={t('header.theme')}
      >
        <option value="auto">{t('theme.auto')}</option>
        <option value="light">{t('theme.light')}</option>
        <option value="dark">{t('theme.dark')}</option>
      </select>
    </div>
  );
}
