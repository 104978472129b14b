/* eslint-disable no-console -- build script output. */
// Fails the build when dist/management.html is missing or exceeds the gzipped budget.
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

const kBudgetBytes = 700 * 1024;
const html = readFileSync(new URL('../dist/management.html', import.meta.url));
const gz = gzipSync(html, { level: 9 }).length;
const kb = (n) => (n / 1024).toFixed(1);
console.log(
  `dist/management.html: ${kb(html.length)} KiB raw, ${kb(gz)} KiB gzipped (budget ${kb(kBudgetBytes)} KiB)`,
);
if (/<script[^>]+src=|<link[^>]+stylesheet/.test(html.toString())) {
  console.error('management.html references external assets; it must be self-contained');
  process.exit(1);
}
if (gz > kBudgetBytes) {
  console.error('gzipped size exceeds budget');
  process.exit(1);
}
