"""Collector integration tests: the real cpa-manager-plus binary consuming the real cpa-sim.

One transport mode per test class. Every test compares what the simulator says it handed out
(GET /_sim/stats: `delivered` for SUBSCRIBE, `popped` for RPOP/LPOP and the HTTP queue) with the
rows committed to usage_events, so "records arrive", "counts match" and "no doubles" are checked
against the producer, not against the collector's own counters.
"""

import json
import os
import random
import signal
import time
import unittest

from cpamp_testlib import (CpaSim, ManagerServer, db_query, free_port, wait_until)

POLL_MS = "100"


def start_server(sim_url, key, mode, batch=100, extra=None, workdir=None):
    env = {"CPA_UPSTREAM_URL": sim_url, "CPA_MANAGEMENT_KEY": key,
           "USAGE_COLLECTOR_MODE": mode, "USAGE_BATCH_SIZE": str(batch),
           "USAGE_POLL_INTERVAL_MS": POLL_MS}
    env.update(extra or {})
    return ManagerServer(env=env, workdir=workdir)


def rows(server, table="usage_events"):
    return db_query(server.db_path, "select count(*) from %s" % table)[0][0]


def collector_status(server, key=None):
    status, body = server.json("GET", "/status", key=key or server.admin_key)
    assert status == 200, body
    return body["collector"]


def wait_rows(server, n, timeout=60, table="usage_events"):
    return wait_until(lambda: rows(server, table) == n, timeout=timeout,
                      message="%d rows in %s (have %d)" % (n, table, rows(server, table)))


def assert_no_duplicates(test, server):
    dup = db_query(server.db_path, "select count(*) from (select event_hash from usage_events "
                                   "group by event_hash having count(*) > 1)")[0][0]
    test.assertEqual(dup, 0)
    distinct = db_query(server.db_path,
                        "select count(distinct request_id || '|' || timestamp_ms || '|' || "
                        "coalesce(latency_ms, '')) from usage_events")[0][0]
    test.assertEqual(distinct, rows(server))


_TEMPLATE = None


def record_template():
    """One real generated record (taken from a throw-away simulator's HTTP queue)."""
    global _TEMPLATE
    if _TEMPLATE is None:
        sim = CpaSim(["--preload", "1"])
        try:
            from cpamp_testlib import request
            status, _, body = request(sim.port, "GET", "/v0/management/usage-queue?count=1",
                                      headers={"Authorization": "Bearer " + sim.key})
            assert status == 200, body
            item = json.loads(body)[0]
            _TEMPLATE = json.loads(item) if isinstance(item, str) else item
        finally:
            sim.stop()
    return _TEMPLATE


def make_records(n, tag):
    out = []
    base = record_template()
    for i in range(n):
        r = dict(base)
        r["request_id"] = "it-%s-%06d" % (tag, i)
        out.append(r)
    return out


class _SimCase(unittest.TestCase):
    sim_args = []
    mode = "auto"
    batch = 100

    def setUp(self):
        self.sim = CpaSim(self.sim_args)
        self.s = start_server(self.sim.url, self.sim.key, self.mode, self.batch)

    def tearDown(self):
        self.s.stop()
        self.sim.stop()


class SubscribeModeTest(_SimCase):
    sim_args = ["--usage-enabled"]
    mode = "subscribe"

    def wait_subscribed(self):
        wait_until(lambda: self.sim.stats()["usage_subscribers"] == 1, message="a subscriber")

    def test_generated_records_arrive_and_controls_are_not_stored(self):
        self.wait_subscribed()
        self.assertEqual(collector_status(self.s)["transport"], "subscribe")
        self.sim.set(rate=3000, count=3000)
        wait_until(lambda: self.sim.stats()["produced"] >= 3000, message="3000 generated")
        self.assertEqual(self.sim.control("POST", "/_sim/refresh")["subscribers"], 1)
        self.sim.publish(['{"support_refresh":true}', '{"refresh":true}'])
        st = self.sim.stats()
        self.assertEqual(st["overflow_lost"], 0)
        self.assertEqual(st["delivered"], 3002)  # + the two injected control messages
        wait_rows(self.s, 3000)
        time.sleep(0.3)  # the control messages are flushed by the same timer
        self.assertEqual(rows(self.s), 3000)
        self.assertEqual(rows(self.s, "dead_letter_events"), 0)
        self.assertEqual(db_query(self.s.db_path, "select count(*) from usage_events where "
                                  "raw_json like '%refresh%'")[0][0], 0)
        assert_no_duplicates(self, self.s)
        c = collector_status(self.s)
        self.assertEqual((c["collector"], c["totalInserted"]), ("running", 3000))

    def test_subscriber_drop_is_survived_without_doubles(self):
        self.wait_subscribed()
        # 1500 records at once overflow the 256-slot subscriber buffer: CPA drops us.
        self.sim.publish(make_records(1500, "burst"))
        st = wait_until(lambda: (lambda x: x if x["subscribers_dropped"] >= 1 else None)(
            self.sim.stats()), message="subscriber dropped")
        self.assertGreater(st["overflow_lost"], 0)
        self.wait_subscribed()  # reconnected
        self.sim.publish(make_records(200, "after"))
        # What went to CPA's pop queue while we were away is drained after the re-subscribe.
        wait_until(lambda: self.sim.stats()["queue_length"] == 0, message="queue drained")
        st = self.sim.stats()
        self.assertEqual(st["produced"], 1700)
        wait_rows(self.s, st["delivered"] + st["popped"])
        # Only the overflowing record(s) are lost: CPA never queued them.
        self.assertEqual(rows(self.s), 1700 - st["overflow_lost"])
        c = collector_status(self.s)
        self.assertGreaterEqual(c["subscriberDrops"], 1)
        self.assertEqual(c["drainedRecords"], st["popped"])
        self.assertGreaterEqual(c["overflowDrops"], 1)
        self.assertEqual(c["estimatedLost"], c["overflowDrops"])
        self.assertGreater(rows(self.s), 200)
        self.assertEqual(db_query(self.s.db_path, "select count(*) from usage_events where "
                                  "request_id like 'it-after-%'")[0][0], 200)
        assert_no_duplicates(self, self.s)
        self.assertGreaterEqual(collector_status(self.s)["reconnects"], 1)

    def test_cpa_restart_drop_and_kill_are_survived(self):
        self.wait_subscribed()
        self.sim.publish(make_records(100, "one"))
        self.assertGreaterEqual(self.sim.drop(), 1)  # CPA restart emulation: connections cut
        self.wait_subscribed()
        self.sim.publish(make_records(100, "two"))
        delivered1 = self.sim.stats()["delivered"]
        self.assertEqual(delivered1, 200)
        wait_rows(self.s, 200)
        # Kill CPA outright: the collector reports the outage, then resumes on the same port.
        port = self.sim.port
        self.sim.kill()
        c = wait_until(lambda: (lambda c: c if c["collector"] == "error" else None)(
            collector_status(self.s)), message="collector error while CPA is down")
        self.assertTrue(c["lastError"].startswith(("connect:", "consume:")), c)
        self.sim = CpaSim(self.sim_args, port=port)
        self.wait_subscribed()
        c = wait_until(lambda: (lambda c: c if c["collector"] == "running" else None)(
            collector_status(self.s)), timeout=40, message="collector running again")
        self.assertNotIn("lastError", c)
        self.sim.publish(make_records(100, "three"))
        self.sim.publish(make_records(100, "one"))  # a replay of already stored records
        wait_rows(self.s, 300)
        time.sleep(0.3)
        self.assertEqual(rows(self.s), 300)
        assert_no_duplicates(self, self.s)
        self.assertGreaterEqual(collector_status(self.s)["totalSkipped"], 100)


class HttpModeTest(_SimCase):
    sim_args = ["--preload", "5000"]
    mode = "http"
    batch = 500

    def test_records_arrive_counts_match_bad_records_dead_lettered(self):
        wait_until(lambda: self.sim.stats()["queue_length"] == 0, message="queue drained")
        self.assertEqual(self.sim.stats()["popped"], 5000)
        wait_rows(self.s, 5000)
        c = collector_status(self.s)
        self.assertEqual((c["collector"], c["transport"]), ("running", "http"))
        bad = ["not json at all", "[1,2,3]", '{"truncated": ', "<html>oops</html>"]
        self.sim.publish(make_records(10, "good") + bad)
        wait_rows(self.s, len(bad), table="dead_letter_events")
        wait_rows(self.s, 5010)
        self.assertEqual(self.sim.stats()["popped"], 5014)
        payloads = {r[0] for r in db_query(self.s.db_path,
                                           "select payload from dead_letter_events")}
        self.assertIn("not json at all", payloads)
        self.assertEqual(collector_status(self.s)["deadLetters"], len(bad))
        assert_no_duplicates(self, self.s)

    def test_cpa_restart_is_survived(self):
        wait_rows(self.s, 5000)
        self.sim.drop()
        self.sim.publish(make_records(50, "post-drop"))
        wait_rows(self.s, 5050)
        self.assertEqual(self.sim.stats()["popped"], 5050)
        port = self.sim.port
        self.sim.kill()
        c = wait_until(lambda: (lambda c: c if c["collector"] == "error" else None)(
            collector_status(self.s)), message="collector error while CPA is down")
        self.assertTrue(c["lastError"].startswith("http:"), c)
        self.sim = CpaSim(["--preload", "700"], port=port)
        wait_rows(self.s, 5750, timeout=60)
        self.assertEqual(collector_status(self.s)["collector"], "running")
        assert_no_duplicates(self, self.s)


class RespModeTest(_SimCase):
    sim_args = ["--preload", "5000"]
    mode = "resp"
    batch = 500

    def test_records_arrive_counts_match_bad_records_dead_lettered(self):
        wait_until(lambda: self.sim.stats()["queue_length"] == 0, message="queue drained")
        self.assertEqual(self.sim.stats()["popped"], 5000)
        wait_rows(self.s, 5000)
        c = collector_status(self.s)
        self.assertEqual((c["collector"], c["transport"]), ("running", "resp"))
        self.sim.publish(['{"support_refresh":true}', '{"refresh":true}'])
        bad = ["<html>oops</html>", "[1,2,3]", '{"truncated": ', "null"]
        self.sim.publish(make_records(10, "good") + bad)
        wait_rows(self.s, len(bad), table="dead_letter_events")
        wait_rows(self.s, 5010)
        self.assertEqual(self.sim.stats()["popped"], 5016)
        time.sleep(0.3)
        self.assertEqual(rows(self.s), 5010)
        self.assertEqual(rows(self.s, "dead_letter_events"), len(bad))
        errors = dict(db_query(self.s.db_path, "select payload, error from dead_letter_events"))
        self.assertIn("not a JSON object", errors["null"])
        assert_no_duplicates(self, self.s)

    def test_cpa_restart_is_survived(self):
        wait_rows(self.s, 5000)
        self.assertGreaterEqual(self.sim.drop(), 1)
        self.sim.publish(make_records(50, "post-drop"))
        wait_rows(self.s, 5050)
        port = self.sim.port
        self.sim.kill()
        wait_until(lambda: collector_status(self.s)["collector"] == "error",
                   message="collector error while CPA is down")
        self.sim = CpaSim(["--preload", "700"], port=port)
        wait_rows(self.s, 5750, timeout=60)
        assert_no_duplicates(self, self.s)


class AutoModeTest(unittest.TestCase):
    def run_auto(self, emulate, expected_transport):
        args = ["--preload", "2000", "--usage-enabled"]
        if emulate:
            args += ["--emulate", emulate]
        sim = CpaSim(args)
        s = start_server(sim.url, sim.key, "auto", 500)
        try:
            if expected_transport == "subscribe":
                # A subscriber never sees preloaded records; generated ones arrive.
                # A subscriber never sees preloaded records: the drain beside it pops them.
                wait_until(lambda: sim.stats()["usage_subscribers"] == 1, message="subscriber")
                wait_until(lambda: sim.stats()["queue_length"] == 0, message="queue drained")
                sim.set(rate=2000, count=sim.stats()["generated"] + 1000)
                wait_until(lambda: sim.stats()["delivered"] >= 1000, message="1000 delivered")
                wait_rows(s, 3000)
                self.assertEqual(collector_status(s)["drainedRecords"], 2000)
            else:
                wait_until(lambda: sim.stats()["queue_length"] == 0, message="queue drained")
                wait_rows(s, sim.stats()["popped"])
                self.assertEqual(rows(s), 2000)
            c = collector_status(s)
            self.assertEqual((c["collector"], c["mode"], c["transport"]),
                             ("running", "auto", expected_transport))
            assert_no_duplicates(self, s)
        finally:
            s.stop()
            sim.stop()

    def test_auto_prefers_subscribe(self):
        self.run_auto(None, "subscribe")

    def test_auto_falls_back_to_http_without_subscribe(self):
        self.run_auto("no-subscribe", "http")

    def test_auto_falls_back_to_resp_without_subscribe_and_http_queue(self):
        self.run_auto("no-subscribe,no-http-queue", "resp")


class StatusTruthTest(unittest.TestCase):
    def test_cpa_unreachable_at_boot_then_appears(self):
        port = free_port()
        s = start_server("http://127.0.0.1:%d" % port, "sim-management-key", "resp", 100)
        sim = None
        try:
            c = wait_until(lambda: (lambda c: c if c["collector"] == "error" else None)(
                collector_status(s)), message="collector error")
            self.assertTrue(c["lastError"].startswith("connect:"), c)
            self.assertIsNone(s.proc.poll())
            sim = CpaSim(["--preload", "300"], port=port)
            wait_rows(s, 300, timeout=45)
            c = collector_status(s)
            self.assertEqual(c["collector"], "running")
            self.assertNotIn("lastError", c)
        finally:
            s.stop()
            if sim:
                sim.stop()

    def test_wrong_key_is_reported(self):
        sim = CpaSim(["--preload", "10"])
        s = start_server(sim.url, "not-the-key", "resp", 100)
        try:
            c = wait_until(lambda: (lambda c: c if c["collector"] == "error" else None)(
                collector_status(s)), message="collector error")
            self.assertTrue(c["lastError"].startswith("auth:"), c)
            self.assertEqual(rows(s), 0)
        finally:
            s.stop()
            sim.stop()


class ConfigControlTest(unittest.TestCase):
    """Start/stop/restart through PUT /usage-service/config, same process throughout."""

    def test_switch_modes_and_stop_without_restart(self):
        sim = CpaSim(["--preload", "1000"])
        s = ManagerServer()
        try:
            key = s.admin_key
            pid = s.proc.pid
            conn = {"cpaBaseUrl": sim.url, "managementKey": sim.key}

            def put(collector):
                collector = dict({"pollIntervalMs": 100}, **collector)
                status, resp = s.json("PUT", "/usage-service/config",
                                      {"config": {"cpaConnection": conn,
                                                  "collector": collector}}, key=key)
                self.assertEqual(status, 200, resp)

            put({"enabled": True, "collectorMode": "http", "batchSize": 200})
            wait_rows(s, 1000)
            c = collector_status(s, key)
            self.assertEqual((c["collector"], c["transport"]), ("running", "http"))
            put({"enabled": True, "collectorMode": "resp", "batchSize": 200})
            wait_until(lambda: collector_status(s, key)["transport"] == "resp",
                       message="transport resp")
            sim.publish(make_records(300, "resp"))
            wait_rows(s, 1300)
            self.assertEqual(collector_status(s, key)["collector"], "running")
            put({"enabled": False, "collectorMode": "resp"})
            wait_until(lambda: collector_status(s, key)["collector"] == "stopped",
                       message="collector stopped")
            sim.publish(make_records(50, "while-off"))
            time.sleep(0.5)
            self.assertEqual(rows(s), 1300)
            self.assertEqual(sim.stats()["queue_length"], 50)
            put({"enabled": True, "collectorMode": "resp"})
            wait_rows(s, 1350)
            self.assertEqual(s.proc.pid, pid)
            self.assertIsNone(s.proc.poll())
            assert_no_duplicates(self, s)
        finally:
            s.stop()
            sim.stop()


class KillNineTest(unittest.TestCase):
    """kill -9 of the server during a 100k-record run loses at most the pop-ahead backlog.

    Bound (docs/operations.md): pop transports pop only while fewer than 40,000 records (the
    pop-ahead limit) wait in memory, and one pop adds at most 4,096, so at any instant at most
    44,096 records have left CPA without being committed here.
    """

    TOTAL = 100_000
    BATCH = 500
    BOUND = 40_000 + 4_096

    def run_kill(self, mode):
        sim = CpaSim(["--preload", str(self.TOTAL)])
        s = start_server(sim.url, sim.key, mode, self.BATCH)
        s2 = None
        try:
            key = s.admin_key
            target = random.randint(5_000, 60_000)
            wait_until(lambda: sim.stats()["popped"] >= target, timeout=90, interval=0.01,
                       message="%d popped" % target)
            time.sleep(random.random() * 0.05)
            os.kill(s.proc.pid, signal.SIGKILL)
            s.proc.wait()
            popped_at_kill = sim.stats()["popped"]
            stored_at_kill = rows(s)
            self.assertLessEqual(popped_at_kill - stored_at_kill, self.BOUND)
            s2 = ManagerServer(env=s.env, workdir=s.workdir)
            wait_until(lambda: sim.stats()["queue_length"] == 0, timeout=120,
                       message="queue drained after restart")
            popped = sim.stats()["popped"]
            self.assertEqual(popped, self.TOTAL)
            wait_until(lambda: rows(s2) >= popped - self.BOUND, timeout=30, message="rows")
            time.sleep(0.5)
            stored = rows(s2)
            self.assertLessEqual(popped - stored, self.BOUND)
            self.assertEqual(db_query(s2.db_path, "pragma integrity_check")[0][0], "ok")
            assert_no_duplicates(self, s2)
            c = collector_status(s2, key)
            self.assertEqual(c["collector"], "running")
            print("kill -9 (%s): popped %d at kill, stored %d at kill, lost %d of %d"
                  % (mode, popped_at_kill, stored_at_kill, popped - stored, self.TOTAL))
        finally:
            if s2:
                s2.stop()
            s.stop()
            sim.stop()

    def test_kill_nine_resp(self):
        self.run_kill("resp")


if __name__ == "__main__":
    unittest.main()
