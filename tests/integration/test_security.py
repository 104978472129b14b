"""Lockout after repeated bad admin keys, reset-admin-key (stopped server, running server,
flags), the process lock, and start-up refusal on invalid configuration."""

import json
import os
import subprocess
import time
import unittest

from cpamp_testlib import ManagerServer, request


def run_binary(server, args, env=None):
    e = dict(server.env)
    e.update(env or {})
    return subprocess.run([server.binary] + args, cwd=server.workdir, env=e,
                          capture_output=True, text=True, timeout=60)


class LockoutTest(unittest.TestCase):
    def test_repeated_bad_keys_lock_one_address_out_but_not_others(self):
        s = ManagerServer()
        try:
            started = time.time()
            statuses = []
            for i in range(10):
                status, _ = s.json("GET", "/status", key="wrong-%d" % i, source="127.0.0.2")
                statuses.append(status)
            self.assertEqual(statuses, [401] * 10)
            self.assertGreater(time.time() - started, 5, "later failures must be slowed down")
            status, hdrs, payload = s.call("GET", "/status", key=s.admin_key, source="127.0.0.2")
            self.assertEqual(status, 429)
            self.assertGreaterEqual(int(hdrs["retry-after"]), 1)
            self.assertEqual(json.loads(payload)["code"], "too_many_requests")
            # Someone else's failures never block a good login from another address.
            t0 = time.time()
            status, _ = s.json("GET", "/status", key=s.admin_key, source="127.0.0.3")
            self.assertEqual(status, 200)
            self.assertLess(time.time() - t0, 1.0)
            # Requests without credentials are rejected but not counted.
            for _ in range(20):
                self.assertEqual(s.json("GET", "/status", source="127.0.0.4")[0], 401)
            self.assertEqual(s.json("GET", "/status", key=s.admin_key, source="127.0.0.4")[0], 200)
            # Only the one-time "generated" line ever shows the key.
            self.assertEqual(s.log().count(s.admin_key), 1)
        finally:
            s.stop()


class ResetAdminKeyTest(unittest.TestCase):
    def test_reset_on_stopped_server_and_refusal_while_running(self):
        s = ManagerServer()
        old_key = s.admin_key
        r = run_binary(s, ["reset-admin-key"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("reset admin key: acquire admin reset lock; stop Manager Server and retry: "
                      "manager database process lock is already held for", r.stderr)
        s.stop()
        created = json.loads(s.setting("admin_credential_v1"))["createdAtMs"]
        r = run_binary(s, ["reset-admin-key"])
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0], "CPA Manager Plus admin key reset.")
        self.assertRegex(lines[1], r"^New admin key: cpamp_[0-9A-Za-z]{32}$")
        self.assertEqual(lines[2], "Save this value now. It will not be shown again.")
        new_key = lines[1].split(": ", 1)[1]
        cred = json.loads(s.setting("admin_credential_v1"))
        self.assertEqual(cred["source"], "cli-generated")
        self.assertEqual(cred["createdAtMs"], created)
        self.assertGreaterEqual(cred["rotatedAtMs"], created)
        s2 = ManagerServer(workdir=s.workdir)
        try:
            self.assertEqual(s2.json("GET", "/status", key=old_key)[0], 401)
            self.assertEqual(s2.json("GET", "/status", key=new_key)[0], 200)
        finally:
            s2.stop()
        # Supplied key (alias command, explicit --db-path, key file).
        keyfile = os.path.join(s.workdir, "key.txt")
        with open(keyfile, "w") as f:
            f.write("  file-supplied-key-42 \n")
        r = run_binary(s, ["reset-admin-password", "--db-path", s.db_path,
                           "--admin-key-file", keyfile])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.splitlines(),
                         ["CPA Manager Plus admin key reset.",
                          "Use the provided admin key to log in after restarting Manager Server."])
        self.assertEqual(json.loads(s.setting("admin_credential_v1"))["source"], "cli")
        s3 = ManagerServer(workdir=s.workdir)
        try:
            self.assertEqual(s3.json("GET", "/status", key="file-supplied-key-42")[0], 200)
        finally:
            s3.stop()

    def test_flag_errors(self):
        s = ManagerServer()
        s.stop()
        cases = [
            (["reset-admin-key", "extra"], 'reset admin key: unexpected argument "extra"'),
            (["reset-admin-key", "--admin-key", "a", "--admin-key-file", "b"],
             "mutually exclusive"),
            (["reset-admin-key", "--db-path", os.path.join(s.workdir, "missing.sqlite")],
             "SQLite database not found at"),
            (["reset-admin-key", "--db-path", s.workdir], "is a directory"),
        ]
        empty = os.path.join(s.workdir, "empty.txt")
        open(empty, "w").close()
        cases.append((["reset-admin-key", "--admin-key-file", empty], "is empty"))
        other = os.path.join(s.workdir, "other.sqlite")
        import sqlite3
        c = sqlite3.connect(other)
        c.execute("create table t(x)")
        c.commit()
        c.close()
        cases.append((["reset-admin-key", "--db-path", other],
                      "does not look like a CPA Manager Plus Manager Server database"))
        for args, message in cases:
            r = run_binary(s, args)
            self.assertEqual(r.returncode, 1, (args, r.stdout, r.stderr))
            self.assertIn(message, r.stderr, args)


class ProcessLockAndConfigTest(unittest.TestCase):
    def test_second_server_on_same_database_refuses(self):
        s = ManagerServer()
        try:
            s2 = ManagerServer(workdir=s.workdir, wait=False)
            self.assertEqual(s2.wait_exit(), 1)
            self.assertIn("acquire manager database process lock: manager database process lock "
                          "is already held for", s2.log())
            self.assertEqual(s.json("GET", "/health")[0], 200)
        finally:
            s.stop()

    def test_invalid_configuration_stops_startup_with_one_clear_line(self):
        cases = [
            ({"HTTP_ADDR": "not-an-address"}, "HTTP_ADDR"),
            ({"USAGE_BATCH_SIZE": "abc"}, "USAGE_BATCH_SIZE"),
            ({"USAGE_POLL_INTERVAL_MS": "-5"}, "USAGE_POLL_INTERVAL_MS"),
            ({"USAGE_COLLECTOR_MODE": "carrier-pigeon"}, "USAGE_COLLECTOR_MODE"),
            ({"CPA_MANAGEMENT_KEY_FILE": "/nonexistent/key"}, "CPA_MANAGEMENT_KEY_FILE"),
        ]
        for env, name in cases:
            s = ManagerServer(env=env, wait=False)
            code = s.wait_exit()
            self.assertEqual(code, 1, env)
            errors = [l for l in s.lines if name in l]
            self.assertTrue(errors, (env, s.log()))
            self.assertIn("load config:", errors[0])

    def test_unreadable_data_key_stops_startup(self):
        s = ManagerServer(wait=False)
        s.wait_listening()
        s.stop()
        with open(os.path.join(s.workdir, "data", "data.key"), "w") as f:
            f.write("too-short")
        s2 = ManagerServer(workdir=s.workdir, wait=False)
        self.assertEqual(s2.wait_exit(), 1)
        self.assertIn("load data key: data key must be 32 bytes or base64-encoded 32 bytes",
                      s2.log())


if __name__ == "__main__":
    unittest.main()
