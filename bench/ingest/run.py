#!/usr/bin/env python3
"""Ingest benchmark: cpa-sim -> cpa-manager-plus collector -> committed usage_events rows.

For each transport (subscribe, http, resp) and each run, a fresh simulator and a fresh data
directory are used. The Manager Server is env-managed (CPA_UPSTREAM_URL + CPA_MANAGEMENT_KEY,
USAGE_COLLECTOR_MODE, USAGE_BATCH_SIZE).

  http / resp   the simulator starts with `--preload N`; the collector drains it.
  subscribe     once the collector has subscribed, the simulator generates N records at
                `--rate` (default 60,000/s). `--publisher unpaced` (default) publishes like CPA,
                whatever the subscriber does: a collector that falls 256 messages behind is
                dropped, the record that overflowed is lost, and records published while it is
                not subscribed go to the pop queue (they expire after 60 s unless popped).
                `--publisher paced` starts the simulator with `--paced` (a slow collector slows
                the generator instead; CPA does not do this).

A run ends when every published record is stored (and, for subscribe, the generator is done),
when nothing has been stored for `--settle` seconds although nothing is left to deliver
(generator done / preload drained: the rest is lost), when the server exits, or at
`--timeout`. Lost records are reported, never an error.

Measured per run:
  published  subscribe: sim `produced`; http/resp: N preloaded records
  stored     rows in usage_events after a clean shutdown; lost = published - stored
  sim        subscribers_dropped, overflow_lost, queued (published while no subscriber
             existed), expired (queued, then pruned by retention)
  events/s   rows committed / wall time from the first record leaving the simulator until the
             last row was committed (GET /status totalInserted, polled every 50 ms)
  CPU        server utime+stime from /proc/<pid>/stat over that time, and as % of one core
  peak RSS   VmHWM from /proc/<pid>/status
  bytes/evt  (usage.sqlite + -wal + -shm) after a clean shutdown (WAL checkpointed) / rows

`--baseline-binary OLD` runs OLD and `--binary` back to back for each transport (ABBA order
when `--repeat N` > 1: old,new,new,old,...) and adds the new/old ratios of events/s and
bytes/event. With `--repeat`, table cells are medians. Both binaries are copied to a temporary
directory first, so rebuilding them during a run does not change what is measured. The machine
load (/proc/loadavg) at start and end is printed with the results, followed by a Markdown table
for docs/benchmarks-ingest.md. Per-run JSON goes to stderr.

Standard library only. Usage:
  run.py --binary B --sim S [--baseline-binary OLD] [--records N] [--modes a,b] [--batch N]
         [--rate R] [--publisher unpaced|paced] [--repeat N] [--timeout S] [--settle S]
"""

import argparse
import datetime
import hashlib
import http.client
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
POLL_S = 0.05


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
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def vm_hwm_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def thread_cpu(pid):
    """CPU seconds per thread name (threads of one name summed), from /proc/<pid>/task."""
    out = {}
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                head, rest = f.read().rsplit(")", 1)
        except OSError:
            continue
        name = head.split("(", 1)[1]
        fields = rest.split()
        out[name] = round(out.get(name, 0) + (int(fields[11]) + int(fields[12])) / CLK_TCK, 1)
    return out


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


class Proc:
    def __init__(self, argv, env=None, cwd=None):
        self.p = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        self.lines = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.p.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_line(self, rx, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for line in list(self.lines):
                m = re.search(rx, line)
                if m:
                    return m
            if self.p.poll() is not None:
                break
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


def snapshot(path, into, name):
    """Copies a binary so a rebuild during the benchmark does not change it; returns (copy, id)."""
    dst = os.path.join(into, name)
    shutil.copy2(path, dst)
    h = hashlib.sha256()
    with open(dst, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    built = datetime.datetime.fromtimestamp(os.path.getmtime(path)).strftime("%Y-%m-%d %H:%M")
    return dst, "%s (sha256 %s, built %s)" % (path, h.hexdigest()[:12], built)


def run_one(args, mode, binary):
    n = args.records
    sim_argv = [args.sim, "--listen", "127.0.0.1:0", "--management-key", "bench-key"]
    if mode == "subscribe":
        sim_argv += ["--usage-enabled"]
        if args.publisher == "paced":
            sim_argv += ["--paced"]
    else:
        sim_argv += ["--preload", str(n)]
    sim = Proc(sim_argv)
    srv = None
    work = tempfile.mkdtemp(prefix="cpamp-bench-ingest-")
    try:
        sim_port = int(sim.wait_line(r"cpa-sim listening on \S+:(\d+)").group(1))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CPA_", "USAGE_"))}
        env.update({"HTTP_ADDR": "127.0.0.1:0",
                    "CPA_UPSTREAM_URL": "http://127.0.0.1:%d" % sim_port,
                    "CPA_MANAGEMENT_KEY": "bench-key", "USAGE_COLLECTOR_MODE": mode,
                    "USAGE_BATCH_SIZE": str(args.batch), "USAGE_POLL_INTERVAL_MS": "100",
                    "USAGE_DATA_DIR": os.path.join(work, "data")})
        env.update(dict(kv.split("=", 1) for kv in args.env))
        srv = Proc([binary], env=env, cwd=work)
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
        cpu_last = cpu0
        t_first = None
        t_last_row = None
        inserted = 0
        end = "timeout"
        t_start = time.time()
        while time.time() < t_start + args.timeout:
            if srv.p.poll() is not None:
                end = "server exited (%s)" % srv.p.returncode
                break
            st = get(sim_port, "/_sim/stats")[1]
            now = time.time()
            if t_first is None and st["delivered"] + st["popped"] > 0:
                t_first = now
            got = get(port, "/status", key)[1]["collector"]["totalInserted"]
            if got > inserted:
                t_last_row = now
                cpu_last = cpu_seconds(pid) or cpu_last
                inserted = got
            if mode == "subscribe":
                published, source_done = st["produced"], st["generated"] >= n
            else:
                published, source_done = n, st["queue_length"] == 0
            if source_done and inserted >= published:
                end = "complete"
                break
            quiet_since = t_last_row or t_first or t_start
            if source_done and now - quiet_since >= args.settle:
                end = "settled"  # nothing left to deliver and nothing stored for --settle s
                break
            time.sleep(POLL_S)
        hwm = vm_hwm_kb(pid)
        threads = thread_cpu(pid)
        sim_stats = get(sim_port, "/_sim/stats")[1]
        sim_cpu = cpu_seconds(sim.p.pid) or 0
    finally:
        if srv:
            srv.stop()
        sim.stop()

    db = os.path.join(work, "data", "usage.sqlite")
    on_disk = sum(os.path.getsize(db + sfx) for sfx in ("", "-wal", "-shm")
                  if os.path.exists(db + sfx))
    stored = raw = 0
    objects = []
    if os.path.exists(db):
        conn = sqlite3.connect(db)
        stored = conn.execute("select count(*) from usage_events").fetchone()[0]
        raw = conn.execute(
            "select count(*) from usage_events where raw_json is not null").fetchone()[0]
        try:
            objects = conn.execute("select name, sum(pgsize) from dbstat group by name "
                                   "order by 2 desc limit 8").fetchall()
        except sqlite3.Error:
            pass
        conn.close()
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)

    published = sim_stats["produced"] if mode == "subscribe" else n
    wall = (t_last_row - t_first) if (t_first and t_last_row and t_last_row > t_first) else 0
    cpu = (cpu_last - cpu0) if cpu0 is not None and cpu_last is not None else 0
    return {"mode": mode, "records": n, "published": published, "stored": stored,
            "lost": published - stored, "end": end, "raw_json_rows": raw,
            "publisher": args.publisher if mode == "subscribe" else "preload",
            "rate": args.rate if mode == "subscribe" else None,
            "subscribers_dropped": sim_stats["subscribers_dropped"],
            "overflow_lost": sim_stats["overflow_lost"], "queued": sim_stats["queued"],
            "expired": sim_stats["expired"], "left_in_queue": sim_stats["queue_length"],
            "delivered": sim_stats["delivered"], "popped": sim_stats["popped"],
            "seconds": round(wall, 2), "events_per_s": round(stored / wall) if wall else 0,
            "cpu_s": round(cpu, 1), "cpu_pct": round(100 * cpu / wall) if wall else 0,
            "peak_rss_mb": round(hwm / 1024, 1), "bytes_on_disk": on_disk,
            "bytes_per_event": round(on_disk / stored) if stored else 0,
            "sim_cpu_s": round(sim_cpu, 1), "thread_cpu_s": threads, "objects": {name: size for name, size in objects}}


LOSS_KEYS = ("lost", "subscribers_dropped", "overflow_lost", "queued", "expired")


def median(rows, key):
    return statistics.median(r[key] for r in rows)


def summarize(rows):
    """One table row from one or more runs of the same transport and build (medians)."""
    s = {k: median(rows, k) for k in ("published", "stored", "lost", "subscribers_dropped",
                                      "overflow_lost", "queued", "expired", "seconds",
                                      "events_per_s", "cpu_s", "cpu_pct", "peak_rss_mb",
                                      "bytes_per_event")}
    s["runs"] = len(rows)
    s["lossy_runs"] = sum(1 for r in rows if r["lost"] > 0)
    s["max"] = {k: max(r[k] for r in rows) for k in LOSS_KEYS}
    s["ends"] = sorted(set(r["end"] for r in rows))
    return s


def loss_cell(s, key):
    """Median of a loss counter; with several runs also its maximum, so no loss is hidden."""
    cell = fmt_int(s[key])
    if s["runs"] > 1 and s["max"][key] > s[key]:
        cell += " (max %s)" % fmt_int(s["max"][key])
    return cell


def fmt_int(v):
    return "{:,}".format(int(round(v)))


def ratio(new, old):
    return "%.2f" % (new / old) if old else "n/a"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", required=True, help="cpa-manager-plus under test (new)")
    ap.add_argument("--baseline-binary", help="old cpa-manager-plus to compare against")
    ap.add_argument("--sim", required=True)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--modes", default="subscribe,http,resp")
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--rate", type=int, default=60_000, help="subscribe generator records/s")
    ap.add_argument("--publisher", choices=("unpaced", "paced"), default="unpaced",
                    help="subscribe: publish like CPA (unpaced) or never overfill (paced)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per transport and build")
    ap.add_argument("--timeout", type=float, default=3600, help="upper bound per run, s")
    ap.add_argument("--settle", type=float, default=15,
                    help="end a run once nothing is left to deliver and no row was stored "
                         "for this long, s")
    ap.add_argument("--env", action="append", default=[], help="extra KEY=VALUE for the server")
    ap.add_argument("--keep", action="store_true", help="keep the data directories")
    args = ap.parse_args()

    bins_dir = tempfile.mkdtemp(prefix="cpamp-bench-bin-")
    try:
        builds = []
        if args.baseline_binary:
            builds.append(("old",) + snapshot(args.baseline_binary, bins_dir, "old"))
        builds.append(("new",) + snapshot(args.binary, bins_dir, "new"))
        load_start = loadavg()
        started = datetime.datetime.now()
        results = {}  # (mode, build) -> [run]
        modes = [m.strip() for m in args.modes.split(",") if m.strip()]
        for mode in modes:
            for i in range(args.repeat):
                order = builds if i % 2 == 0 else builds[::-1]  # ABBA
                for name, path, _ in order:
                    r = run_one(args, mode, path)
                    r["build"] = name
                    results.setdefault((mode, name), []).append(r)
                    print("%s %s run %d: published %d stored %d lost %d (%s), %d events/s, "
                          "dropped %d, overflow_lost %d, queued %d, expired %d" % (
                              mode, name, i + 1, r["published"], r["stored"], r["lost"],
                              r["end"], r["events_per_s"], r["subscribers_dropped"],
                              r["overflow_lost"], r["queued"], r["expired"]),
                          file=sys.stderr, flush=True)
                    print(json.dumps(r), file=sys.stderr, flush=True)
        load_end = loadavg()
    finally:
        shutil.rmtree(bins_dir, ignore_errors=True)

    sub = ("%s publisher at %s records/s" % (args.publisher, fmt_int(args.rate))
           if "subscribe" in modes else "")
    print()
    print("### Ingest, %s (%d cores, load average %s at start, %s at end)" % (
        started.strftime("%Y-%m-%d %H:%M"), os.cpu_count() or 0, load_start, load_end))
    print()
    print("%s records per run, batch %d%s%s%s." % (
        fmt_int(args.records), args.batch, ", subscribe: " + sub if sub else "",
        ", medians of %d runs per cell (ABBA order)" % args.repeat if args.repeat > 1 else "",
        ", server env " + " ".join(args.env) if args.env else ""))
    for name, _, ident in builds:
        print("- %s: `%s`" % (name, ident))
    print()
    build_col = len(builds) > 1
    print("| transport |%s published | stored | lost | subscribers dropped | overflow lost | "
          "queued | expired | wall s | events/s | CPU s (%% of one core) | peak RSS MB | "
          "bytes/event |" % (" build |" if build_col else ""))
    print("|---|%s---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|" % (
        "---|" if build_col else ""))
    summaries = {}
    for mode in modes:
        for name, _, _ in builds:
            s = summarize(results[(mode, name)])
            summaries[(mode, name)] = s
            lost = loss_cell(s, "lost")
            if s["lossy_runs"] and s["runs"] > 1:
                lost += " in %d/%d runs" % (s["lossy_runs"], s["runs"])
            if s["ends"] != ["complete"]:
                lost += " [%s]" % ", ".join(s["ends"])
            label = mode if mode != "subscribe" else "subscribe (%s)" % args.publisher
            print("| %s |%s %s | %s | %s | %s | %s | %s | %s | %.1f | %s | %.1f (%d %%) | %.1f | "
                  "%s |" % (label, " %s |" % name if build_col else "",
                            fmt_int(s["published"]), fmt_int(s["stored"]), lost,
                            loss_cell(s, "subscribers_dropped"), loss_cell(s, "overflow_lost"),
                            loss_cell(s, "queued"), loss_cell(s, "expired"), s["seconds"],
                            fmt_int(s["events_per_s"]), s["cpu_s"], s["cpu_pct"],
                            s["peak_rss_mb"], fmt_int(s["bytes_per_event"])))
    print()
    print("lost = published - stored. queued = published while no subscriber existed (the "
          "collector may still pop them); expired = queued, then pruned by the 60 s retention. "
          "[..] = how runs ended when not all were complete.")
    if build_col:
        print()
        print("| transport | events/s old | events/s new | new/old | bytes/event old | "
              "bytes/event new | new/old |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for mode in modes:
            o, nw = summaries[(mode, "old")], summaries[(mode, "new")]
            print("| %s | %s | %s | %s | %s | %s | %s |" % (
                mode, fmt_int(o["events_per_s"]), fmt_int(nw["events_per_s"]),
                ratio(nw["events_per_s"], o["events_per_s"]), fmt_int(o["bytes_per_event"]),
                fmt_int(nw["bytes_per_event"]),
                ratio(nw["bytes_per_event"], o["bytes_per_event"])))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
