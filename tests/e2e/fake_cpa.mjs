// A tiny fake CLIProxyAPI for the panel e2e tests: the Management API calls the panel and the
// Manager Server make during setup/login, plus /management.html for pure CPA panel mode.
// Usage: startFakeCpa({ key, panelFile }) → { url, close(), requests }.
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';

export function startFakeCpa({ key, panelFile, version = '6.6.6-fake' }) {
  const requests = [];
  const state = { usageStatisticsEnabled: false };
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    requests.push(`${req.method} ${url.pathname}`);
    const send = (status, body, headers = {}) => {
      const text = typeof body === 'string' ? body : JSON.stringify(body);
      res.writeHead(status, {
        'Content-Type': typeof body === 'string' ? 'text/html; charset=utf-8' : 'application/json',
        'X-CPA-VERSION': version,
        'X-CPA-BUILD-DATE': '2026-06-01T00:00:00Z',
        'Access-Control-Allow-Origin': '*',
        'Access-Control-Allow-Headers': 'Authorization, Content-Type',
        'Access-Control-Allow-Methods': 'GET, POST, PUT, PATCH, DELETE, OPTIONS',
        ...headers,
      });
      res.end(text);
    };
    if (req.method === 'OPTIONS') return send(204, '');
    if (url.pathname === '/management.html' && panelFile) {
      return send(200, readFileSync(panelFile, 'utf8'));
    }
    if (url.pathname === '/v1/models') {
      return send(200, { object: 'list', data: [{ id: 'gpt-5', owned_by: 'openai' }, { id: 'claude-sonnet-4', owned_by: 'anthropic' }] });
    }
    if (!url.pathname.startsWith('/v0/management/')) return send(404, { error: 'not found' });
    const auth = req.headers['authorization'] ?? '';
    if (auth !== `Bearer ${key}`) return send(401, { error: 'invalid management key' });
    const head = url.pathname.slice('/v0/management/'.length);
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      switch (`${req.method} ${head}`) {
        case 'GET config':
          return send(200, {
            debug: false,
            'request-retry': 3,
            'proxy-url': '',
            'usage-statistics-enabled': state.usageStatisticsEnabled,
            'redis-usage-queue-retention-seconds': 60,
            routing: { strategy: 'round-robin' },
          });
        case 'PUT usage-statistics-enabled':
          state.usageStatisticsEnabled = JSON.parse(body || '{}').value === true;
          return send(200, { status: 'ok' });
        case 'GET usage-queue':
          return send(200, []);
        case 'GET api-keys':
          return send(200, { 'api-keys': ['sk-client-test-0001', 'sk-client-test-0002'] });
        case 'GET gemini-api-key':
          return send(200, { 'gemini-api-key': [{ 'api-key': 'g1' }] });
        case 'GET codex-api-key':
          return send(200, { 'codex-api-key': [] });
        case 'GET claude-api-key':
          return send(200, { 'claude-api-key': [{ 'api-key': 'c1' }, { 'api-key': 'c2' }] });
        case 'GET openai-compatibility':
          return send(200, { 'openai-compatibility': [] });
        case 'GET auth-files':
          return send(200, { files: [{ name: 'codex-a.json' }] });
        default:
          return send(404, { error: 'not found' });
      }
    });
    return undefined;
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      resolve({ url: `http://127.0.0.1:${port}`, requests, state, close: () => new Promise((r) => server.close(r)) });
    });
  });
}
