"""Helpers for integration tests: run the real cpa-manager-plus binary on a free port with a
temporary data directory, talk HTTP to it, and stand up a small fake CPA management API.

Only the Python standard library is used, so the tests run on a fresh Debian 12 machine.
"""

import atexit
import http.client
import http.server
import json
import os
import queue
import re
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
import unittest

BINARY = os.environ.get("CPAMP_BINARY", "")
SIM_BINARY = os.environ.get("CPAMP_SIM_BINARY", "")
REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

_TEMP_DIRS = []


def make_temp_dir(prefix="cpamp-it-"):
    """A temporary directory removed when the test process exits."""
    path = tempfile.mkdtemp(prefix=prefix)
    _TEMP_DIRS.append(path)
    return path


@atexit.register
def _remove_temp_dirs():
    for path in _TEMP_DIRS:
        shutil.rmtree(path, ignore_errors=True)


def place_binary(source, target):
    """Puts the binary at `target` (config.json is created next to the executable): a hard link
    when possible, so dozens of servers do not each copy a 150 MB file."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy(source, target)


LISTEN_RE = re.compile(r"cpa-manager-plus listening on (\S+)")
KEY_RE = re.compile(r"CPA Manager Plus admin key generated: (\S+)")


def request(port, method, path, body=None, headers=None, host="127.0.0.1", source=None,
            timeout=30):
    """One HTTP request; returns (status, headers dict lower-cased, body bytes)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout,
                                      source_address=(source, 0) if source else None)
    data = body
    if isinstance(body, (dict, list)):
        data = json.dumps(body).encode()
    elif isinstance(body, str):
        data = body.encode()
    conn.request(method, path, body=data, headers=headers or {})
    resp = conn.getresponse()
    payload = resp.read()
    hdrs = {k.lower(): v for k, v in resp.getheaders()}
    conn.close()
    return resp.status, hdrs, payload


def bearer(key):
    return {"Authorization": "Bearer " + key}


class ManagerServer:
    """The real binary in a temp dir. Logs (stderr) are collected line by line."""

    def __init__(self, env=None, workdir=None, args=None, wait=True):
        if not BINARY:
            raise RuntimeError("CPAMP_BINARY is not set (run through ctest)")
        self.workdir = workdir or make_temp_dir()
        self.binary = os.path.join(self.workdir, "cpa-manager-plus")
        if not os.path.exists(self.binary):
            place_binary(BINARY, self.binary)
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("CPA_", "USAGE_", "HTTP_ADDR", "PANEL_PATH"))}
        self.env["HTTP_ADDR"] = "127.0.0.1:0"
        self.env.update(env or {})
        self.lines = []
        self._lines_q = queue.Queue()
        self.proc = subprocess.Popen([self.binary] + (args or []), cwd=self.workdir, env=self.env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self._pump_thread = threading.Thread(target=self._pump, daemon=True)
        self._pump_thread.start()
        self.port = None
        self.admin_key = None
        if wait:
            self.wait_listening()

    def _pump(self):
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.lines.append(line)
            self._lines_q.put(line)
        self._lines_q.put(None)

    def wait_for_line(self, pattern, timeout=20):
        rx = re.compile(pattern)
        deadline = time.time() + timeout
        for line in list(self.lines):
            if rx.search(line):
                return line
        while time.time() < deadline:
            try:
                line = self._lines_q.get(timeout=max(0.05, deadline - time.time()))
            except queue.Empty:
                break
            if line is None:
                break
            if rx.search(line):
                return line
        raise AssertionError("no log line matching %r; log:\n%s" % (pattern, "\n".join(self.lines)))

    def wait_listening(self):
        line = self.wait_for_line(LISTEN_RE.pattern)
        self.port = int(LISTEN_RE.search(line).group(1).rsplit(":", 1)[1])
        for l in self.lines:
            m = KEY_RE.search(l)
            if m:
                self.admin_key = m.group(1)
        return self.port

    def _finish_output(self):
        """After the process ended: collect every remaining line, close the pipe."""
        self._pump_thread.join(timeout=10)
        if self.proc.stdout and not self.proc.stdout.closed:
            self.proc.stdout.close()

    def wait_exit(self, timeout=20):
        code = self.proc.wait(timeout=timeout)
        self._finish_output()
        return code

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._finish_output()

    def log(self):
        return "\n".join(self.lines)

    @property
    def db_path(self):
        return os.path.join(self.workdir, "data", "usage.sqlite")

    def setting(self, key):
        conn = sqlite3.connect(self.db_path)
        try:
            row = conn.execute("select value from settings where key=?", (key,)).fetchone()
            return row[0] if row else None
        finally:
            conn.close()

    def call(self, method, path, body=None, key=None, headers=None, source=None):
        h = dict(headers or {})
        if key is not None:
            h.update(bearer(key))
        status, hdrs, payload = request(self.port, method, path, body, h, source=source)
        return status, hdrs, payload

    def json(self, method, path, body=None, key=None, headers=None, source=None):
        status, hdrs, payload = self.call(method, path, body, key, headers, source)
        try:
            data = json.loads(payload) if payload else None
        except ValueError:
            data = payload.decode(errors="replace")
        return status, data


class FakeCPA:
    """A small CPA Management API: key check, config with retention, usage-statistics switch,
    and an echo route for proxy tests. Behaviour is tweaked through attributes."""

    def __init__(self, key="cpa-mgmt-key-123456", retention=60, tls_dir=None):
        self.key = key
        self.retention = retention  # None = omit the field (old CPA)
        self.usage_enabled = False
        self.put_usage_status = 200
        self.requests = []
        self.lock = threading.Lock()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, status, body=b"", ctype="application/json", extra=None):
                if isinstance(body, (dict, list)):
                    body = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("X-CPA-VERSION", "v7.2.140-fake")
                self.send_header("X-CPA-COMMIT", "abc1234")
                if body:
                    self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path, _, query = self.path.partition("?")
                with fake.lock:
                    fake.requests.append({"method": self.command, "path": path, "query": query,
                                          "headers": dict(self.headers), "body": body})
                if path in ("/v1/models", "/models"):
                    return self._send(200, {"object": "list", "data": [{"id": "gpt-5.4"}],
                                            "auth": self.headers.get("Authorization", "")})
                if not path.startswith("/v0/management/"):
                    return self._send(404)
                auth = self.headers.get("Authorization", "")
                token = auth[7:].strip() if auth.lower().startswith("bearer ") else auth
                if token != fake.key:
                    return self._send(401, {"error": "invalid management key"})
                sub = path[len("/v0/management/"):]
                if sub == "config" and self.command == "GET":
                    cfg = {"usage-statistics-enabled": fake.usage_enabled, "proxy-url": "",
                           "debug": False}
                    if fake.retention is not None:
                        cfg["redis-usage-queue-retention-seconds"] = fake.retention
                    return self._send(200, cfg)
                if sub == "usage-statistics-enabled" and self.command in ("PUT", "PATCH"):
                    if fake.put_usage_status != 200:
                        return self._send(fake.put_usage_status, {"error": "boom"})
                    fake.usage_enabled = json.loads(body or b"{}").get("value") is True
                    return self._send(200, {"status": "ok"})
                if sub.startswith("echo"):
                    return self._send(200, {"method": self.command, "path": path, "query": query,
                                            "body": body.decode(errors="replace"),
                                            "auth": auth,
                                            "headers": {k.lower(): v for k, v in self.headers.items()}})
                if sub == "big":
                    n = int(query.split("=")[1]) if "=" in query else 1 << 20
                    return self._send(200, b"x" * n, "application/octet-stream")
                return self._send(404)

            do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = do_HEAD = _handle

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        if tls_dir:
            # Self-signed certificate made with the openssl CLI (no network, no fixtures).
            import ssl
            cert = os.path.join(tls_dir, "cpa.crt")
            key_file = os.path.join(tls_dir, "cpa.key")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                            "-keyout", key_file, "-out", cert, "-days", "1",
                            "-subj", "/CN=127.0.0.1"], check=True, capture_output=True)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, key_file)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
            self.url = "https://127.0.0.1:%d" % self.port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def requests_to(self, path):
        with self.lock:
            return [r for r in self.requests if r["path"] == path]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


SIM_LISTEN_RE = re.compile(r"cpa-sim listening on (\S+)")


class CpaSim:
    """The real tools/cpa-sim binary (CPAMP_SIM_BINARY) on port 0 (or a given port, e.g. to
    emulate a CPA restart on the same address). Control endpoint helpers: stats(), publish(),
    drop(), set(). kill() sends SIGKILL, stop() SIGTERM."""

    def __init__(self, args=None, port=0, key="sim-management-key"):
        if not SIM_BINARY:
            raise RuntimeError("CPAMP_SIM_BINARY is not set (run through ctest)")
        self.key = key
        self.args = ["--listen", "127.0.0.1:%d" % port, "--management-key", key] + (args or [])
        self.proc = subprocess.Popen([SIM_BINARY] + self.args, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        m = SIM_LISTEN_RE.search(line or "")
        if not m:
            self.proc.kill()
            raise RuntimeError("cpa-sim did not start: %r" % line)
        self.port = int(m.group(1).rsplit(":", 1)[1])
        self.url = "http://127.0.0.1:%d" % self.port
        # Keep draining stdout so the simulator never blocks on a full pipe.
        self._drain = threading.Thread(target=self.proc.stdout.read, daemon=True)
        self._drain.start()

    def control(self, method, path, body=None):
        status, _, payload = request(self.port, method, path, body)
        if status != 200:
            raise AssertionError("cpa-sim %s %s -> %d %r" % (method, path, status, payload))
        return json.loads(payload) if payload else None

    def stats(self):
        return self.control("GET", "/_sim/stats")

    def publish(self, payloads, channel=None):
        """Publishes each payload (str or dict) verbatim as one record."""
        lines = [p if isinstance(p, str) else json.dumps(p) for p in payloads]
        path = "/_sim/publish" + ("?channel=" + channel if channel else "")
        return self.control("POST", path, "\n".join(lines) + "\n")["published"]

    def drop(self, clear=False):
        return self.control("POST", "/_sim/drop" + ("?clear=1" if clear else ""))["dropped"]

    def set(self, **kw):
        query = "&".join("%s=%s" % (k, str(v).lower() if isinstance(v, bool) else v)
                         for k, v in kw.items())
        return self.control("POST", "/_sim/set?" + query)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._close_stdout()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._close_stdout()

    def _close_stdout(self):
        self._drain.join(timeout=5)
        if not self._drain.is_alive():
            self.proc.stdout.close()


def wait_until(predicate, timeout=30, interval=0.05, message="condition"):
    """Polls predicate() until it returns a truthy value (returned) or raises on timeout."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out waiting for %s (last: %r)" % (message, last))


def db_query(path, sql, args=()):
    """One read-only query on a database the server may be writing (WAL readers are fine)."""
    conn = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=10)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()
