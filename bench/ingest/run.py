#!/usr/bin/env python3
"""Ingest benchmark: cpa-sim -> cpa-manager-plus collector -> committed usage_events rows.

For each transport (subscribe, http, resp) a fresh simulator and a fresh data directory are
used. The Manager Server is env-managed (CPA_UPSTREAM_URL + CPA_MANAGEMENT_KEY,
USAGE_COLLECTOR_MODE, USAGE_BATCH_SIZE). http/resp drain `--preload N`; subscribe is fed by the
simulator's generator (`--rate`, paced so a subscriber that keeps up is never dropped; a slow
collector slows the generator instead of losing records).

Measured per transport:
  events/s   rows committed / wall time from the first record leaving the simulator until the
             last row is committed (polled through GET /status totalInserted every 50 ms)
  CPU        server utime+stime from /proc/<pid>/stat over the whole run, and as % of wall time
  peak RSS   VmHWM from /proc/<pid>/status
  bytes/evt  (usage.sqlite + -wal) after a clean shutdown (WAL checkpointed) / rows
Standard library only. Usage: run.py --binary B --sim S [--records N] [--modes a,b] [--batch N]
"""

import argparse
import http.client
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def get(port, path, key=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path, headers={"Authorization": "Bearer " + key} if key else {})
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, json.loads(body) if body else None


def post(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", path, body=b"")
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return json.loads(body) if body else None


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def vm_hwm_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


class Proc:
    def __init__(self, argv, env=None, cwd=None, pattern=None):
        self.p = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        self.lines = []
        self.found = threading.Event()
        self.pattern = re.compile(pattern) if pattern else None
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.p.stdout:
            self.lines.append(line.rstrip("\n"))
            if self.pattern and self.pattern.search(line):
                self.found.set()

    def wait_line(self, rx, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for line in list(self.lines):
                m = re.search(rx, line)
                if m:
                    return m
            time.sleep(0.02)
        raise RuntimeError("no line %r:\n%s" % (rx, "\n".join(self.lines[-30:])))

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def run_one(args, mode):
    n = args.records
    sim_argv = [args.sim, "--listen", "127.0.0.1:0", "--management-key", "bench-key"]
    if mode == "subscribe":
        sim_argv += ["--usage-enabled"]
    else:
        sim_argv += ["--preload", str(n)]
    sim = Proc(sim_argv)
    sim_port = int(sim.wait_line(r"cpa-sim listening on \S+:(\d+)").group(1))

    work = tempfile.mkdtemp(prefix="cpamp-bench-ingest-")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CPA_", "USAGE_"))}
    env.update({"HTTP_ADDR": "127.0.0.1:0", "CPA_UPSTREAM_URL": "http://127.0.0.1:%d" % sim_port,
                "CPA_MANAGEMENT_KEY": "bench-key", "USAGE_COLLECTOR_MODE": mode,
                "USAGE_BATCH_SIZE": str(args.batch), "USAGE_POLL_INTERVAL_MS": "100",
                "USAGE_DATA_DIR": os.path.join(work, "data")})
    env.update(dict(kv.split("=", 1) for kv in args.env))
    srv = Proc([args.binary], env=env, cwd=work)
    port = int(srv.wait_line(r"cpa-manager-plus listening on \S+:(\d+)").group(1))
    key = srv.wait_line(r"admin key generated: (\S+)").group(1)
    pid = srv.p.pid

    if mode == "subscribe":
        deadline = time.time() + 30
        while get(sim_port, "/_sim/stats")[1]["usage_subscribers"] < 1:
            if time.time() > deadline:
                raise RuntimeError("no subscriber")
            time.sleep(0.02)
        post(sim_port, "/_sim/set?count=%d&rate=%d" % (n, args.rate))

    cpu0 = cpu_seconds(pid)
    t_first = None
    inserted = 0
    deadline = time.time() + args.timeout
    while time.time() < deadline:
        st = get(sim_port, "/_sim/stats")[1]
        out = st["delivered"] if mode == "subscribe" else st["popped"]
        if t_first is None and out > 0:
            t_first = time.time()
        inserted = get(port, "/status", key)[1]["collector"]["totalInserted"]
        if inserted >= n:
            break
        time.sleep(0.05)
    t_end = time.time()
    cpu = cpu_seconds(pid) - cpu0
    hwm = vm_hwm_kb(pid)
    sim_stats = get(sim_port, "/_sim/stats")[1]
    sim_cpu = cpu_seconds(sim.p.pid)
    srv.stop()
    sim.stop()
    db = os.path.join(work, "data", "usage.sqlite")
    on_disk = sum(os.path.getsize(db + sfx) for sfx in ("", "-wal", "-shm")
                  if os.path.exists(db + sfx))
    conn = sqlite3.connect(db)
    stored = conn.execute("select count(*) from usage_events").fetchone()[0]
    raw = conn.execute("select count(*) from usage_events where raw_json is not null").fetchone()[0]
    objects = []
    try:
        objects = conn.execute("select name, sum(pgsize) from dbstat group by name "
                               "order by 2 desc limit 8").fetchall()
    except sqlite3.Error:
        pass
    conn.close()
    wall = t_end - (t_first or t_end)
    res = {"mode": mode, "records": n, "stored": stored, "raw_json_rows": raw,
           "seconds": round(wall, 2), "events_per_s": round(stored / wall) if wall else 0,
           "cpu_s": round(cpu, 1), "cpu_pct": round(100 * cpu / wall) if wall else 0,
           "peak_rss_mb": round(hwm / 1024, 1), "bytes_on_disk": on_disk,
           "bytes_per_event": round(on_disk / stored) if stored else 0,
           "sim_cpu_s": round(sim_cpu, 1), "sim_out": sim_stats["delivered"] + sim_stats["popped"],
           "objects": {name: size for name, size in objects}}
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--sim", required=True)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--modes", default="subscribe,http,resp")
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--rate", type=int, default=200_000, help="subscribe generator rate")
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--env", action="append", default=[], help="extra KEY=VALUE for the server")
    ap.add_argument("--keep", action="store_true", help="keep the data directories")
    args = ap.parse_args()
    print("| transport | records | stored | wall s | events/s | CPU s (%) | peak RSS MB | "
          "bytes/event |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for mode in args.modes.split(","):
        r = run_one(args, mode)
        print("| %s | %d | %d | %.1f | %d | %.1f (%d%%) | %.1f | %d |" % (
            r["mode"], r["records"], r["stored"], r["seconds"], r["events_per_s"], r["cpu_s"],
            r["cpu_pct"], r["peak_rss_mb"], r["bytes_per_event"]), flush=True)
        print(json.dumps(r), file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
