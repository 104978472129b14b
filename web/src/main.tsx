import { render } from 'preact';
import { App } from './app';
import { initTheme } from './lib/theme';
import { langStore, setLang } from './i18n';
import './styles.css';

initTheme();
setLang(langStore.get());
const root = document.getElementById('app');
if (root) render(<App />, root);
