import { defineConfig } from 'vitest/config';
import preact from '@preact/preset-vite';
import { viteSingleFile } from 'vite-plugin-singlefile';
import pkg from './package.json' with { type: 'json' };

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
    proxy: {
      '/usage-service': 'http://127.0.0.1:18317',
      '/setup': 'http://127.0.0.1:18317',
      '/status': 'http://127.0.0.1:18317',
      '/health': 'http://127.0.0.1:18317',
      '/v0': 'http://127.0.0.1:18317',
      '/v1': 'http://127.0.0.1:18317',
    },
  },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
});
