"""Usage data over HTTP and the CLI: raw queue records imported, dashboard/analytics on them,
export → import round trip (HTTP and offline CLI), re-import is a no-op, validation codes."""

import json
import os
import subprocess
import tempfile
import time
import unittest

from cpamp_testlib import REPO_ROOT, ManagerServer, make_temp_dir

GOLDEN = os.path.join(REPO_ROOT, "tests", "golden", "usage")


def queue_records(n, base_ms):
    """n distinct raw CPA usage records (the golden success record with varied ids/times)."""
    template = json.load(open(os.path.join(GOLDEN, "a_success.input.json")))
    out = []
    for i in range(n):
        r = json.loads(json.dumps(template))
        r["request_id"] = "req-it-%d" % i
        r["timestamp"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime((base_ms + i * 1000) / 1000)) + "Z"
        r["model"] = "gpt-5.4" if i % 2 else "claude-sonnet-4.5"
        if i % 10 == 0:
            r["failed"] = True
            r["fail"] = {"status_code": 429, "body": "rate limited for sk-proj-abcdefghijklmnop"}
        out.append(r)
    return out


class UsageDataTest(unittest.TestCase):
    def setUp(self):
        self.s = ManagerServer()
        self.key = self.s.admin_key

    def tearDown(self):
        self.s.stop()

    def import_body(self, body):
        status, _, payload = self.s.call("POST", "/v0/management/usage/import", body, key=self.key)
        return status, json.loads(payload)

    def test_import_analytics_and_round_trip(self):
        now_ms = int(time.time() * 1000)
        base = now_ms - 3600_000
        records = queue_records(200, base)
        ndjson = "\n".join(json.dumps(r) for r in records) + "\n"
        status, report = self.import_body(ndjson)
        self.assertEqual(status, 200, report)
        self.assertEqual(report["added"], 200)
        status, report = self.import_body(ndjson)
        self.assertEqual((report["added"], report["skipped"]), (0, 200))

        status, st = self.s.json("GET", "/status", key=self.key)
        self.assertEqual(st["events"], 200)

        # Dashboard and analytics see the imported events.
        day_start = now_ms - (now_ms % 86_400_000)
        status, dash = self.s.json("GET", "/v0/management/dashboard/summary?today_start_ms=%d&now_ms=%d"
                                   % (min(day_start, base), now_ms), key=self.key)
        self.assertEqual(status, 200, dash)
        status, ana = self.s.json("POST", "/v0/management/monitoring/analytics",
                                  {"from_ms": base - 1000, "to_ms": now_ms + 1000,
                                   "include": {"summary": True}}, key=self.key)
        self.assertEqual(status, 200, ana)
        self.assertIn("200", json.dumps(ana))
        status, bad = self.s.json("POST", "/v0/management/monitoring/analytics",
                                  {"from_ms": now_ms, "to_ms": base}, key=self.key)
        self.assertEqual(status, 400, bad)
        self.assertIn("code", bad)
        self.assertEqual(self.s.json("GET", "/v0/management/monitoring/analytics",
                                     key=self.key)[0], 405)

        # Export: NDJSON ascending, no secrets, never client IPs / raw bodies.
        status, hdrs, payload = self.s.call("GET", "/v0/management/usage/export", key=self.key)
        self.assertEqual(status, 200)
        self.assertIn("attachment", hdrs.get("content-disposition", ""))
        lines = payload.decode().splitlines()
        self.assertEqual(len(lines), 200)
        stamps = [json.loads(l)["timestamp_ms"] if "timestamp_ms" in json.loads(l) else 0 for l in lines]
        self.assertEqual(stamps, sorted(stamps))
        self.assertNotIn("sk-proj-abcdefghijklmnop", payload.decode())
        self.assertNotIn("192.0.2.10", payload.decode())

        # Into a fresh server: identical export, re-import adds nothing.
        other = ManagerServer()
        try:
            status, _, p2 = other.call("POST", "/v0/management/usage/import", payload,
                                       key=other.admin_key)
            self.assertEqual(status, 200, p2)
            self.assertEqual(json.loads(p2)["added"], 200)
            status, _, again = other.call("GET", "/v0/management/usage/export", key=other.admin_key)
            self.assertEqual(again, payload)
            status, _, p3 = other.call("POST", "/v0/management/usage/import", payload,
                                       key=other.admin_key)
            self.assertEqual(json.loads(p3)["added"], 0)
        finally:
            other.stop()

        # The compatible /usage payload streams and counts the same requests.
        status, _, usage = self.s.call("GET", "/v0/management/usage", key=self.key)
        self.assertEqual(status, 200)
        self.assertIn("total_requests", usage.decode())

    def test_broken_lines_report_line_numbers(self):
        body = open(os.path.join(REPO_ROOT, "tests", "golden", "import", "broken_lines.jsonl")).read()
        status, report = self.import_body(body)
        self.assertIn(status, (200, 400), report)
        self.assertGreater(report["failed"], 0)
        self.assertTrue(report.get("rejected"), report)
        self.assertTrue(all("line" in r or "index" in r for r in report["rejected"]))

    def test_cli_export_and_import_offline(self):
        records = queue_records(50, int(time.time() * 1000) - 600_000)
        status, report = self.import_body("\n".join(json.dumps(r) for r in records))
        self.assertEqual(report["added"], 50)
        self.s.stop()
        out = os.path.join(self.s.workdir, "export.jsonl")
        r = subprocess.run([self.s.binary, "export", "--db-path", self.s.db_path, "-o", out],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Exported 50 events", r.stdout)
        fresh = make_temp_dir("cpamp-cli-")
        target = os.path.join(fresh, "usage.sqlite")
        # import refuses a non-manager file but creates a fresh database when none exists.
        r = subprocess.run([self.s.binary, "import", "--db-path", target, out],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout.splitlines()[-1])["added"], 50)
        r = subprocess.run([self.s.binary, "import", "--db-path", target, out],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(json.loads(r.stdout.splitlines()[-1])["added"], 0)


if __name__ == "__main__":
    unittest.main()
