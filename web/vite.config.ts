import { defineConfig } from 'vitest/config';
import preact from '@preact/preset-vite';
import { viteSingleFile } from 'vite-plugin-singlefile';
import pkg from './package.json' with { type: 'json' };

// `npm run dev` proxies API paths to CPAMP_DEV_TARGET (default the server's usual port).
const env = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env;
const devTarget = env?.['CPAMP_DEV_TARGET'] ?? 'http://127.0.0.1:18317';

// One self-contained file: dist/management.html (inline JS and CSS), embedded by the C++ build.
export default defineConfig({
  plugins: [preact(), viteSingleFile({ removeViteModuleLoader: true })],
  define: { __APP_VERSION__: JSON.stringify(pkg.version) },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2020',
    cssCodeSplit: false,
    assetsInlineLimit: 100_000_000,
    chunkSizeWarningLimit: 4000,
    rollupOptions: { input: 'management.html' },
  },
  server: {
    proxy: Object.fromEntries(
      ['/usage-service', '/setup', '/status', '/health', '/v0', '/v1'].map((p) => [p, devTarget]),
    ),
  },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
});
