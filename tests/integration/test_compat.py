"""Opening data written by upstream: a v1.1.0 database with a plaintext legacy CPA
Management Key, an existing data.key in another accepted encoding, and config.json rules."""

import base64
import json
import os
import sqlite3
import tempfile
import unittest

from cpamp_testlib import REPO_ROOT, FakeCPA, ManagerServer, make_temp_dir


class UpstreamDatabaseTest(unittest.TestCase):
    def test_v110_database_with_plaintext_key_opens_and_keeps_everything(self):
        cpa = FakeCPA(key="plain-management-key-123")
        work = make_temp_dir("cpamp-compat-")
        os.makedirs(os.path.join(work, "data"))
        db = os.path.join(work, "data", "usage.sqlite")
        sql = open(os.path.join(REPO_ROOT, "tests", "compat", "upstream-v1.1.0-schema.sql")).read()
        sql = sql.replace("http://127.0.0.1:8317", cpa.url)
        conn = sqlite3.connect(db)
        conn.executescript(sql)
        conn.execute("create table usage_future_table(x integer)")
        conn.execute("insert into usage_future_table values (42)")
        conn.commit()
        before_events = conn.execute("select count(*) from usage_events").fetchone()[0]
        before_prices = conn.execute("select * from model_prices order by model").fetchall()
        conn.close()
        # An upstream data.key written with padding (accepted encoding).
        key_bytes = bytes(range(32))
        with open(os.path.join(work, "data", "data.key"), "w") as f:
            f.write(base64.b64encode(key_bytes).decode() + "\n")
        os.chmod(os.path.join(work, "data", "data.key"), 0o600)

        s = ManagerServer(workdir=work)
        try:
            self.assertIn("CPA Manager Plus legacy data migrated", s.log())
            self.assertIsNotNone(s.admin_key)  # v1.1.0 fixture has no admin credential row
            status, info = s.json("GET", "/usage-service/info")
            self.assertTrue(info["configured"])
            self.assertTrue(info["hasHistoricalData"])
            self.assertEqual(info["migrationStatus"], "migrated")
            mc = json.loads(s.setting("manager_config_v1"))
            self.assertTrue(mc["cpaConnection"]["managementKey"].startswith("enc:v1:"))
            self.assertTrue(json.loads(s.setting("setup"))["managementKey"].startswith("enc:v1:"))
            # The legacy key still works through the proxy (decrypted on use).
            status, _, payload = s.call("GET", "/v0/management/config", key=s.admin_key)
            self.assertEqual(status, 200, payload)
            status, st = s.json("GET", "/status", key=s.admin_key)
            self.assertEqual(st["events"], before_events)
            self.assertNotIn("plain-management-key-123", s.log())
        finally:
            s.stop()
        conn = sqlite3.connect(db)
        self.assertEqual(conn.execute("select x from usage_future_table").fetchone()[0], 42)
        self.assertEqual(conn.execute("select count(*) from usage_events").fetchone()[0],
                         before_events)
        after = conn.execute("select model, prompt_per_1m, completion_per_1m, cache_per_1m "
                             "from model_prices order by model").fetchall()
        self.assertEqual([r[:4] for r in after], [r[:4] for r in [
            (p[0], p[1], p[2], p[3]) for p in before_prices]])
        self.assertEqual(conn.execute("pragma integrity_check").fetchone()[0], "ok")
        conn.close()
        # Second boot: nothing left to migrate, key unchanged.
        s2 = ManagerServer(workdir=work)
        try:
            self.assertIn("CPA Manager Plus admin credential initialized", s2.log())
            self.assertEqual(s2.json("GET", "/v0/management/config", key=s.admin_key)[0], 200)
        finally:
            s2.stop()
            cpa.close()


class ConfigFileTest(unittest.TestCase):
    def test_cpa_manager_config_and_relative_data_dir(self):
        work = make_temp_dir("cpamp-cfg-")
        cfg_dir = os.path.join(work, "etc")
        os.makedirs(cfg_dir)
        cfg = os.path.join(cfg_dir, "manager.json")
        with open(cfg, "w") as f:
            json.dump({"httpAddr": "127.0.0.1:0", "dataDir": "./state", "batchSize": 250}, f)
        s = ManagerServer(workdir=work, env={"CPA_MANAGER_CONFIG": cfg, "HTTP_ADDR": ""})
        try:
            self.assertTrue(os.path.exists(os.path.join(cfg_dir, "state", "usage.sqlite")))
            self.assertFalse(os.path.exists(os.path.join(work, "config.json")))
            status, c = s.json("GET", "/usage-service/config")
            self.assertEqual(c["config"]["collector"]["batchSize"], 250)
        finally:
            s.stop()


if __name__ == "__main__":
    unittest.main()
