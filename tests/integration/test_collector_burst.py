"""Collector bursts against the real cpa-sim: the write-behind buffer, subscriber drops, drains,
the buffer bound and kill -9.

The simulator's generator is unpaced, like CPA: it publishes at `rate` whatever the subscriber
does, and a subscriber 256 messages behind is dropped (the overflowing record is lost, later
records go to the pop queue until someone subscribes again). Every test checks what the simulator
says it produced / delivered / queued / popped / lost (GET /_sim/stats) against the rows committed
to usage_events, never only against the collector's own counters.

A second SQLite connection holding `BEGIN IMMEDIATE` on the server's usage.sqlite emulates a
slow or blocked disk: the server's writer waits (busy timeout), the reader keeps reading into the
bounded in-memory buffer.
"""

import os
import random
import signal
import sqlite3
import time
import unittest

from cpamp_testlib import CpaSim, ManagerServer, db_query, free_port, wait_until
from test_collector import assert_no_duplicates, collector_status, rows, start_server

BURST = 50_000
RETENTION_S = 60  # cpa-sim default redis-usage-queue-retention-seconds
MAX_POP = 4_096  # one pop (or one subscribe hand-over chunk) adds at most this many records


def sim_stat(sim, key):
    return sim.stats()[key]


def wait_subscribed(sim, timeout=30):
    wait_until(lambda: sim.stats()["usage_subscribers"] == 1, timeout=timeout,
               message="a usage subscriber")


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class WriteLock:
    """Holds SQLite's write lock on `path` from another connection (BEGIN IMMEDIATE) until
    release(), which rolls back. Used from a single thread."""

    def __init__(self, path, timeout=20):
        self.conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
        t0 = time.time()
        self.conn.execute("BEGIN IMMEDIATE")
        self.acquired_at = time.time()
        self.waited = self.acquired_at - t0

    def release(self):
        if self.conn is not None:
            try:
                self.conn.execute("ROLLBACK")
            finally:
                self.conn.close()
                self.conn = None
            return time.time() - self.acquired_at
        return 0.0


def wait_all_stored(test, sim, server, timeout=RETENTION_S):
    """Waits until the generator finished, CPA's queue is empty and rows == produced - lost."""
    def done():
        st = sim.stats()
        if st["count_limit"] and st["generated"] < st["count_limit"]:
            return None
        if st["queue_length"] != 0:
            return None
        return st if rows(server) == st["produced"] - st["overflow_lost"] else None
    try:
        return wait_until(done, timeout=timeout, interval=0.1,
                          message="rows == produced - overflow_lost")
    except AssertionError:
        st = sim.stats()
        test.fail("not all stored: rows %d, sim %r, collector %r\nlog tail:\n%s"
                  % (rows(server), st, collector_status(server),
                     "\n".join(server.lines[-30:])))


class UnpacedBurstTest(unittest.TestCase):
    def run_burst(self, mode, batch):
        sim = CpaSim(["--usage-enabled"])
        s = start_server(sim.url, sim.key, mode, batch)
        try:
            wait_subscribed(sim)
            self.assertEqual(collector_status(s)["transport"], "subscribe")
            t0 = time.time()
            sim.set(rate=BURST, count=sim_stat(sim, "generated") + BURST)
            peak_seen = 0

            def done():
                nonlocal peak_seen
                peak_seen = max(peak_seen, collector_status(s)["backlogRecords"])
                st = sim.stats()
                if st["generated"] < BURST:
                    return None
                return st if rows(s) == st["produced"] - st["overflow_lost"] else None

            st = wait_until(done, timeout=RETENTION_S, interval=0.05,
                            message="%d rows" % BURST)
            elapsed = time.time() - t0
            time.sleep(0.3)
            st = sim.stats()
            c = collector_status(s)
            print("\n  burst %s/batch %s: %d records stored in %.2f s (%.0f/s), "
                  "peakBacklogRecords %d (polled max %d), readerStalls %d"
                  % (mode, batch, rows(s), elapsed, BURST / elapsed,
                     c["peakBacklogRecords"], peak_seen, c["readerStalls"]))
            # The collector keeps up: CPA never dropped it, nothing was lost or queued-and-lost.
            self.assertEqual(st["overflow_lost"], 0, st)
            self.assertEqual(st["subscribers_dropped"], 0, st)
            self.assertEqual(st["expired"], 0, st)
            self.assertEqual(st["produced"], BURST, st)
            self.assertEqual(st["delivered"] + st["popped"], BURST, st)
            self.assertEqual(rows(s), BURST)
            assert_no_duplicates(self, s)
            self.assertEqual(c["totalInserted"], BURST, c)
            self.assertEqual(c["subscriberDrops"], 0, c)
            self.assertEqual(c["backlogRecords"], 0, c)
            self.assertGreaterEqual(c["peakBacklogRecords"], peak_seen)
        finally:
            s.stop()
            sim.stop()

    def test_unpaced_burst_subscribe(self):
        self.run_burst("subscribe", 100)  # the default USAGE_BATCH_SIZE

    def test_unpaced_burst_auto(self):
        self.run_burst("auto", 500)


class WriteLockTest(unittest.TestCase):
    def test_burst_while_database_is_write_locked(self):
        sim = CpaSim(["--usage-enabled"])
        s = start_server(sim.url, sim.key, "subscribe", 500)
        lock = None
        try:
            wait_subscribed(sim)
            before = rows(s)
            self.assertEqual(before, 0)
            t0 = time.time()
            sim.set(rate=BURST, count=sim_stat(sim, "generated") + BURST)
            lock = WriteLock(s.db_path)
            max_backlog = 0
            rows_locked = set()
            while time.time() - lock.acquired_at < 3.0:
                c = collector_status(s)
                max_backlog = max(max_backlog, c["backlogRecords"])
                rows_locked.add(rows(s))
                time.sleep(0.05)
            st_locked = sim.stats()
            waited = lock.waited
            held = lock.release()
            lock = None
            st = wait_all_stored(self, sim, s)
            elapsed = time.time() - t0
            time.sleep(0.3)
            st = sim.stats()
            c = collector_status(s)
            print("\n  write lock held %.2f s (waited %.2f s for it) during the burst: max "
                  "backlogRecords seen %d, rows while locked %s, delivered at release %d; all %d "
                  "stored after %.2f s, peakBacklogRecords %d, commitFailures %d"
                  % (held, waited, max_backlog, sorted(rows_locked)[:3],
                     st_locked["delivered"], rows(s), elapsed, c["peakBacklogRecords"],
                     c["commitFailures"]))
            # Nothing could be committed while locked, yet the reader kept reading.
            self.assertEqual(len(rows_locked), 1, rows_locked)
            self.assertGreater(max_backlog, 0)
            self.assertGreater(st_locked["delivered"], 0)
            self.assertEqual(st["overflow_lost"], 0, st)
            self.assertEqual(st["subscribers_dropped"], 0, st)
            self.assertEqual(st["expired"], 0, st)
            self.assertEqual(st["produced"], BURST, st)
            self.assertEqual(rows(s), BURST)
            assert_no_duplicates(self, s)
            self.assertEqual(c["totalInserted"], BURST, c)
            self.assertEqual(c["backlogRecords"], 0, c)
            self.assertGreaterEqual(c["peakBacklogRecords"], max_backlog)
        finally:
            if lock:
                lock.release()
            s.stop()
            sim.stop()


class SubscriberDropTest(unittest.TestCase):
    def test_forced_subscriber_drop_is_drained(self):
        total = 30_000
        sim = CpaSim(["--usage-enabled"])
        s = start_server(sim.url, sim.key, "subscribe", 500)
        try:
            wait_subscribed(sim)
            gen0 = sim_stat(sim, "generated")
            # Drop midway, deterministically: right after the next 15,000 records.
            self.assertEqual(sim.control("POST", "/_sim/drop-subscribers?after=15000")["after"],
                             15000)
            sim.set(rate=5_000, count=gen0 + total)
            wait_until(lambda: sim.stats()["subscribers_dropped"] >= 1, timeout=20,
                       message="the forced subscriber drop")
            st = wait_all_stored(self, sim, s)
            # The drain after the re-subscribe pops what was queued during the gap.
            wait_until(lambda: collector_status(s)["drainedRecords"] == sim.stats()["popped"],
                       timeout=10, message="drainedRecords == popped")
            time.sleep(0.3)
            st = sim.stats()
            c = collector_status(s)
            print("\n  forced drop: sim queued %d, popped %d, delivered %d, subscribers_dropped "
                  "%d; collector subscriberDrops %d, overflowDrops %d, drainedRecords %d, "
                  "drains %d, estimatedLost %d, drainTransport %s"
                  % (st["queued"], st["popped"], st["delivered"], st["subscribers_dropped"],
                     c["subscriberDrops"], c["overflowDrops"], c["drainedRecords"], c["drains"],
                     c["estimatedLost"], c["drainTransport"]))
            self.assertEqual(st["produced"], total, st)
            self.assertEqual(st["overflow_lost"], 0, st)
            self.assertEqual(st["expired"], 0, st)
            self.assertGreaterEqual(st["subscribers_dropped"], 1, st)
            self.assertGreater(st["queued"], 0, st)
            self.assertEqual(st["popped"], st["queued"], st)
            self.assertEqual(st["queue_length"], 0, st)
            self.assertEqual(st["delivered"] + st["queued"], total, st)
            self.assertEqual(rows(s), total)  # a drop-subscribers close loses nothing
            assert_no_duplicates(self, s)
            self.assertGreaterEqual(c["subscriberDrops"], 1, c)
            self.assertEqual(c["drainedRecords"], st["popped"], c)
            self.assertGreaterEqual(c["drains"], 1, c)
            self.assertEqual(c["totalInserted"], total, c)
            self.assertEqual(c["collector"], "running", c)
        finally:
            s.stop()
            sim.stop()


class BufferBoundTest(unittest.TestCase):
    def test_buffer_bound_stalls_reader_and_loses_nothing_after(self):
        total = 40_000
        max_records = 3_000
        bound = max_records + MAX_POP  # 7,096
        # The server starts while "CPA" is not there yet, so the lock is taken before any
        # record is consumed; the simulator then comes up on that port with the preload.
        port = free_port()
        s = start_server("http://127.0.0.1:%d" % port, "sim-management-key", "resp", 500,
                         extra={"USAGE_BUFFER_MAX_RECORDS": str(max_records)})
        sim = None
        lock = None
        try:
            self.assertEqual(rows(s), 0)
            lock = WriteLock(s.db_path)
            sim = CpaSim(["--preload", str(total)], port=port)
            wait_until(lambda: sim.stats()["popped"] > 0, timeout=20, message="first pop")
            first_pop = time.time()
            max_backlog = max_gap = max_rss = 0
            samples = 0
            stalled_seen = False
            while time.time() - first_pop < 4.0:
                c = collector_status(s)
                st = sim.stats()
                r = rows(s)
                max_backlog = max(max_backlog, c["backlogRecords"])
                max_gap = max(max_gap, st["popped"] - r)
                max_rss = max(max_rss, rss_kib(s.proc.pid))
                stalled_seen = stalled_seen or c["readerStalled"] or c["readerStalls"] > 0
                samples += 1
                time.sleep(0.05)
            st_locked = sim.stats()
            rows_locked = rows(s)
            held = lock.release()
            lock = None
            print("\n  resp, buffer %d, lock held %.2f s: popped %d while locked (rows %d), max "
                  "backlogRecords %d, max popped-rows %d, max VmRSS %.1f MB, %d samples, "
                  "stall seen %s"
                  % (max_records, held, st_locked["popped"], rows_locked, max_backlog, max_gap,
                     max_rss / 1024.0, samples, stalled_seen))
            self.assertEqual(rows_locked, 0)
            self.assertTrue(stalled_seen)  # the pops paused for the writer, and /status says so
            self.assertGreater(st_locked["popped"], 0)
            self.assertLess(st_locked["popped"], total)  # the bound held CPA's queue back
            self.assertLessEqual(max_backlog, bound)
            self.assertLessEqual(max_gap, bound)
            self.assertLess(max_rss, 200 * 1024)
            wait_until(lambda: rows(s) == total, timeout=RETENTION_S, interval=0.1,
                       message="all %d stored (have %d)" % (total, rows(s)))
            time.sleep(0.3)
            st = sim.stats()
            self.assertEqual(st["popped"], total, st)
            self.assertEqual(st["queue_length"], 0, st)
            self.assertEqual(rows(s), total)
            assert_no_duplicates(self, s)
            c = collector_status(s)
            self.assertEqual(c["totalInserted"], total, c)
            self.assertLessEqual(c["peakBacklogRecords"], bound, c)
        finally:
            if lock:
                lock.release()
            s.stop()
            if sim:
                sim.stop()

    def test_buffer_bound_subscribe_stall_then_drain(self):
        max_records = 2_000
        total = 20_000
        sim = CpaSim(["--usage-enabled"])
        s = start_server(sim.url, sim.key, "subscribe", 500,
                         extra={"USAGE_BUFFER_MAX_RECORDS": str(max_records)})
        lock = None
        try:
            wait_subscribed(sim)
            lock = WriteLock(s.db_path)
            sim.set(rate=5_000, count=sim_stat(sim, "generated") + total)
            stalled_seen = False
            max_backlog = max_rss = 0
            while time.time() - lock.acquired_at < 4.0:
                c = collector_status(s)
                stalled_seen = stalled_seen or c["readerStalled"] or c["readerStalls"] >= 1
                max_backlog = max(max_backlog, c["backlogRecords"])
                max_rss = max(max_rss, rss_kib(s.proc.pid))
                time.sleep(0.05)
            st_locked = sim.stats()
            held = lock.release()
            lock = None
            st = wait_all_stored(self, sim, s)
            time.sleep(0.5)
            st = sim.stats()
            c = collector_status(s)
            print("\n  subscribe, buffer %d, lock held %.2f s: stall seen %s, max backlog %d, max "
                  "VmRSS %.1f MB; at release sim dropped %d (overflow_lost %d, queued %d); end: "
                  "produced %d, delivered %d, queued %d, popped %d, overflow_lost %d, "
                  "subscribers_dropped %d, rows %d; collector readerStalls %d, readerStallMs %d, "
                  "subscriberDrops %d, overflowDrops %d, estimatedLost %d, drainedRecords %d"
                  % (max_records, held, stalled_seen, max_backlog, max_rss / 1024.0,
                     st_locked["subscribers_dropped"], st_locked["overflow_lost"],
                     st_locked["queued"], st["produced"], st["delivered"], st["queued"],
                     st["popped"], st["overflow_lost"], st["subscribers_dropped"], rows(s),
                     c["readerStalls"], c["readerStallMs"], c["subscriberDrops"],
                     c["overflowDrops"], c["estimatedLost"], c["drainedRecords"]))
            self.assertTrue(stalled_seen)
            self.assertGreaterEqual(c["readerStalls"], 1, c)
            self.assertLessEqual(max_backlog, max_records + MAX_POP)
            self.assertLess(max_rss, 200 * 1024)
            self.assertEqual(st["produced"], total, st)
            self.assertEqual(st["expired"], 0, st)
            self.assertEqual(st["popped"], st["queued"], st)
            self.assertLessEqual(st["overflow_lost"], st["subscribers_dropped"], st)
            self.assertEqual(rows(s), total - st["overflow_lost"])
            assert_no_duplicates(self, s)
            self.assertEqual(c["drainedRecords"], st["popped"], c)
            self.assertEqual(c["totalInserted"], rows(s), c)
        finally:
            if lock:
                lock.release()
            s.stop()
            sim.stop()


class KillNineBurstTest(unittest.TestCase):
    ROUNDS = 5
    TOTAL = 60_000
    RATE = 20_000
    MAX_RECORDS = 20_000
    # What can have left CPA without being committed at a kill -9: the buffer (its bound plus
    # one hand-over chunk), what sat in the kernel socket buffers (<= ~8 MiB of ~1 KB records)
    # and the simulator's own 256-message subscriber buffer (counted as delivered).
    SOCKET_RECORDS = (8 << 20) // 1000
    SIM_BUFFER = 256

    def test_kill_nine_during_bursts(self):
        rng = random.Random()
        report = []
        for rnd in range(self.ROUNDS):
            report.append(self.one_round(rnd, rng.uniform(0.3, 2.5)))
        print()
        for line in report:
            print("  " + line)

    def one_round(self, rnd, delay):
        sim = CpaSim(["--usage-enabled"])
        s = start_server(sim.url, sim.key, "subscribe", 500,
                         extra={"USAGE_BUFFER_MAX_RECORDS": str(self.MAX_RECORDS)})
        s2 = None
        try:
            wait_subscribed(sim)
            sim.set(rate=self.RATE, count=sim_stat(sim, "generated") + self.TOTAL)
            t0 = time.time()
            last_backlog = max_backlog = 0
            while time.time() - t0 < delay:
                try:
                    c = collector_status(s)
                    last_backlog = c["backlogRecords"]
                    max_backlog = max(max_backlog, last_backlog)
                except (OSError, AssertionError):
                    pass
                time.sleep(0.02)
            os.kill(s.proc.pid, signal.SIGKILL)
            s.proc.wait()
            # Once CPA has noticed the closed subscriber, `delivered` no longer moves until the
            # restart: everything delivered up to then is what the killed server may have lost.
            st_kill = wait_until(lambda: (lambda x: x if x["usage_subscribers"] == 0 else None)(
                sim.stats()), timeout=10, interval=0.01, message="CPA saw the subscriber go")
            rows_kill = rows(s)
            self.assertEqual(db_query(s.db_path, "pragma integrity_check")[0][0], "ok")
            assert_no_duplicates(self, s)
            s.stop()  # collects the pump thread
            # Restart on the same data: it re-subscribes and drains what CPA queued meanwhile.
            s2 = ManagerServer(env=s.env, workdir=s.workdir)
            s2.admin_key = s.admin_key  # printed once, at the first start only
            st = wait_all_stored_after_kill(sim, s2)
            time.sleep(0.3)
            st = sim.stats()
            stored = rows(s2)
            lost = st["produced"] - stored
            bound = (self.MAX_RECORDS + MAX_POP + self.SOCKET_RECORDS + self.SIM_BUFFER
                     + st["overflow_lost"])
            in_flight = st_kill["delivered"] - rows_kill
            line = ("round %d: kill after %.2f s: delivered %d at kill, rows %d at kill "
                    "(delivered-rows %d), last backlog seen %d (max %d), lost %d "
                    "(sim overflow_lost %d, queued %d, popped %d, bound %d)"
                    % (rnd, delay, st_kill["delivered"], rows_kill, in_flight, last_backlog,
                       max_backlog, lost, st["overflow_lost"], st["queued"], st["popped"], bound))
            self.assertEqual(st["produced"], self.TOTAL, line)
            self.assertEqual(st["expired"], 0, line)
            self.assertEqual(st["queue_length"], 0, line)
            self.assertEqual(st["popped"], st["queued"], line)
            self.assertGreaterEqual(lost, 0, line)
            self.assertLessEqual(lost, bound, line)
            # Only what had been delivered by the kill (and not yet committed) can be lost.
            self.assertLessEqual(lost, max(0, in_flight) + st["overflow_lost"], line)
            self.assertEqual(db_query(s2.db_path, "pragma integrity_check")[0][0], "ok")
            assert_no_duplicates(self, s2)
            self.assertEqual(collector_status(s2)["collector"], "running")
            return line
        finally:
            if s2:
                s2.stop()
            s.stop()
            sim.stop()


def wait_all_stored_after_kill(sim, server, timeout=RETENTION_S):
    """After a restart: the generator finished, CPA's queue is drained and rows are stable."""
    state = {"rows": -1, "since": 0.0}

    def done():
        st = sim.stats()
        if st["generated"] < st["count_limit"] or st["queue_length"] != 0:
            return None
        if collector_status(server)["backlogRecords"] != 0:
            return None
        r = rows(server)
        now = time.time()
        if r != state["rows"]:
            state["rows"], state["since"] = r, now
            return None
        return st if now - state["since"] >= 0.5 else None
    return wait_until(done, timeout=timeout, interval=0.1, message="drained after restart")


if __name__ == "__main__":
    unittest.main()
