"""First boot, /usage-service/info, POST /setup (happy path and every error code) and the
manager configuration routes, against the real binary and a fake CPA."""

import json
import unittest

from cpamp_testlib import FakeCPA, ManagerServer


class FirstBootTest(unittest.TestCase):
    def test_admin_key_printed_once_and_never_again(self):
        s = ManagerServer()
        try:
            self.assertRegex(s.admin_key or "", r"^cpamp_[0-9A-Za-z]{32}$")
            self.assertIn("CPA Manager Plus data key created at", s.log())
            status, body = s.json("GET", "/health")
            self.assertEqual((status, body), (200, {"ok": True, "service": "cpa-manager-plus"}))
            status, info = s.json("GET", "/usage-service/info")
            self.assertEqual(status, 200)
            self.assertEqual(info["service"], "cpa-manager-plus")
            self.assertEqual(info["mode"], "embedded")
            self.assertFalse(info["configured"])
            self.assertTrue(info["setupRequired"])
            self.assertEqual(info["migrationStatus"], "fresh")
            key = s.admin_key
        finally:
            s.stop()
        self.assertEqual(s.log().count(key), 1, "the key must appear exactly once in the log")
        s2 = ManagerServer(workdir=s.workdir)
        try:
            self.assertIsNone(s2.admin_key)
            self.assertIn("CPA Manager Plus admin credential initialized", s2.log())
            self.assertNotIn(key, s2.log())
            status, _ = s2.json("GET", "/status", key=key)
            self.assertEqual(status, 200)
        finally:
            s2.stop()

    def test_env_admin_key_seeds_first_boot_only(self):
        s = ManagerServer(env={"CPA_MANAGER_ADMIN_KEY": "my-chosen-admin-key"})
        try:
            self.assertIsNone(s.admin_key)
            self.assertEqual(s.json("GET", "/status", key="my-chosen-admin-key")[0], 200)
            cred = json.loads(s.setting("admin_credential_v1"))
            self.assertEqual(cred["source"], "env")
            self.assertNotIn("my-chosen-admin-key", s.log())
        finally:
            s.stop()
        s2 = ManagerServer(workdir=s.workdir, env={"CPA_MANAGER_ADMIN_KEY": "another-key-xyz"})
        try:
            self.assertEqual(s2.json("GET", "/status", key="another-key-xyz")[0], 401)
            self.assertEqual(s2.json("GET", "/status", key="my-chosen-admin-key")[0], 200)
        finally:
            s2.stop()


class SetupTest(unittest.TestCase):
    def setUp(self):
        self.cpa = FakeCPA()
        self.s = ManagerServer()
        self.key = self.s.admin_key

    def tearDown(self):
        self.s.stop()
        self.cpa.close()

    def setup_call(self, body, key=None):
        return self.s.json("POST", "/setup", body, key=key or self.key)

    def test_happy_path_binds_cpa_encrypts_key_and_enables_usage(self):
        status, body = self.setup_call({"cpaBaseUrl": self.cpa.url.replace("http://", "") +
                                        "/v0/management/", "cpaManagementKey": self.cpa.key,
                                        "pollIntervalMs": 1000})
        self.assertEqual(status, 200, body)
        self.assertEqual(body, {"ok": True, "upstream": self.cpa.url})
        self.assertTrue(self.cpa.usage_enabled)
        put = self.cpa.requests_to("/v0/management/usage-statistics-enabled")
        self.assertEqual(json.loads(put[-1]["body"]), {"value": True})
        mc = json.loads(self.s.setting("manager_config_v1"))
        self.assertTrue(mc["cpaConnection"]["managementKey"].startswith("enc:v1:"))
        self.assertEqual(mc["collector"]["pollIntervalMs"], 1000)
        self.assertTrue(json.loads(self.s.setting("setup"))["managementKey"].startswith("enc:v1:"))
        status, info = self.s.json("GET", "/usage-service/info")
        self.assertTrue(info["configured"])
        self.assertFalse(info["setupRequired"])
        self.assertEqual(info["migrationStatus"], "ready")
        # GET config needs the admin key now and returns the decrypted key plus live CPA facts.
        self.assertEqual(self.s.json("GET", "/usage-service/config")[0], 401)
        status, cfg = self.s.json("GET", "/usage-service/config", key=self.key)
        self.assertEqual(status, 200)
        self.assertEqual(cfg["source"], "db")
        self.assertEqual(cfg["config"]["cpaConnection"]["managementKey"], self.cpa.key)
        self.assertEqual(cfg["cpaUsage"], {"usageStatisticsEnabled": True,
                                           "redisUsageQueueRetentionSeconds": 60,
                                           "retentionSourceDefault": False})
        self.assertNotIn(self.cpa.key, self.s.log())

    def test_monitoring_off_does_not_touch_usage_statistics(self):
        status, body = self.setup_call({"cpaBaseUrl": self.cpa.url, "cpaManagementKey": self.cpa.key,
                                        "requestMonitoringEnabled": False})
        self.assertEqual(status, 200, body)
        self.assertFalse(self.cpa.usage_enabled)
        self.assertEqual(self.cpa.requests_to("/v0/management/usage-statistics-enabled"), [])
        mc = json.loads(self.s.setting("manager_config_v1"))
        self.assertFalse(mc["collector"]["enabled"])

    def test_error_codes(self):
        url, key = self.cpa.url, self.cpa.key
        cases = [
            ({"cpaBaseUrl": url}, 400, "cpa_connection_required"),
            ({"cpaManagementKey": key}, 400, "cpa_connection_required"),
            ({"cpaBaseUrl": url, "cpaManagementKey": "wrong-key"}, 502,
             "management_api_validation_failed"),
            ({"cpaBaseUrl": "http://127.0.0.1:1", "cpaManagementKey": key}, 502, "request_failed"),
            ({"cpaBaseUrl": url, "cpaManagementKey": key, "pollIntervalMs": 61000}, 400,
             "poll_interval_exceeds_retention"),
        ]
        for body, want_status, want_code in cases:
            status, resp = self.setup_call(body)
            self.assertEqual((status, resp.get("code")), (want_status, want_code), (body, resp))
        status, resp = self.setup_call({"cpaBaseUrl": url, "cpaManagementKey": "wrong-key"})
        self.assertEqual(resp["error"], "management API validation failed: 401 Unauthorized")
        status, resp = self.setup_call({"cpaBaseUrl": url, "cpaManagementKey": key,
                                        "pollIntervalMs": 61000})
        self.assertIn("(60 seconds)", resp["error"])
        # Retention 0 → invalid; failing PUT usage-statistics-enabled → 502.
        self.cpa.retention = 0
        status, resp = self.setup_call({"cpaBaseUrl": url, "cpaManagementKey": key})
        self.assertEqual((status, resp["code"]), (400, "cpa_usage_retention_invalid"))
        self.cpa.retention = 60
        self.cpa.put_usage_status = 500
        status, resp = self.setup_call({"cpaBaseUrl": url, "cpaManagementKey": key})
        self.assertEqual((status, resp["code"]), (502, "enable_cpa_usage_statistics_failed"))
        self.cpa.put_usage_status = 200
        # Nothing was saved by the failures above.
        self.assertIsNone(self.s.setting("manager_config_v1"))
        # Transport details: bad JSON, wrong method, no/invalid key, oversized body.
        status, _, payload = self.s.call("POST", "/setup", "{not json", key=self.key)
        self.assertEqual((status, json.loads(payload)["code"]), (400, "request_failed"))
        self.assertEqual(self.s.json("GET", "/setup")[1]["code"], "method_not_allowed")
        self.assertEqual(self.s.json("GET", "/setup")[0], 405)
        self.assertEqual(self.s.json("POST", "/setup", {"cpaBaseUrl": url})[0], 401)
        status, resp = self.s.json("POST", "/setup", "x" * (2 * 1024 * 1024), key=self.key)
        self.assertEqual((status, resp["code"]), (413, "payload_too_large"))
        # Rebinding to another CPA with another key needs PUT /usage-service/config.
        self.assertEqual(self.setup_call({"cpaBaseUrl": url, "cpaManagementKey": key})[0], 200)
        other = FakeCPA(key="other-cpa-key-999")
        try:
            status, resp = self.setup_call({"cpaBaseUrl": other.url,
                                            "cpaManagementKey": other.key})
            self.assertEqual((status, resp["code"]), (401, "invalid_existing_management_key"))
            status, resp = self.s.json("PUT", "/usage-service/config", {"config": {
                "cpaConnection": {"cpaBaseUrl": other.url, "managementKey": other.key}}},
                key=self.key)
            self.assertEqual(status, 200, resp)
            self.assertEqual(resp["source"], "db")
            self.assertEqual(resp["config"]["cpaConnection"]["cpaBaseUrl"], other.url)
        finally:
            other.close()

    def test_put_config_validation(self):
        status, cfg = self.s.json("GET", "/usage-service/config")  # public while unconfigured
        self.assertEqual(status, 200)
        self.assertEqual(cfg["source"], "")
        self.assertEqual(cfg["config"]["externalUsageService"], {"enabled": False})
        put = lambda c: self.s.json("PUT", "/usage-service/config", {"config": c}, key=self.key)
        status, resp = put({"cpaConnection": {"cpaBaseUrl": self.cpa.url}})
        self.assertEqual((status, resp["code"]), (400, "cpa_connection_required"))
        status, resp = put({"collector": {"enabled": True}})
        self.assertEqual((status, resp["code"]), (400, "cpa_connection_required_for_monitoring"))
        status, resp = put({"collector": {"enabled": False},
                            "codexInspection": {"schedule": {"timeZone": "Mars/Olympus"}}})
        self.assertEqual((status, resp["code"]), (400, "invalid_time_zone"))
        status, resp = put({"cpaConnection": {"cpaBaseUrl": self.cpa.url,
                                              "managementKey": self.cpa.key},
                            "collector": {"enabled": True, "pollIntervalMs": 2000,
                                          "collectorMode": "http", "batchSize": 500},
                            "codexInspection": {"schedule": {"timeZone": "Asia/Kolkata"}}})
        self.assertEqual(status, 200, resp)
        self.assertEqual(resp["config"]["collector"]["collectorMode"], "http")
        self.assertEqual(resp["config"]["collector"]["batchSize"], 500)
        self.assertEqual(resp["config"]["codexInspection"]["schedule"]["timeZone"], "Asia/Kolkata")
        self.assertTrue(self.cpa.usage_enabled)
        status, _, payload = self.s.call("PUT", "/usage-service/config", "{", key=self.key)
        self.assertEqual(status, 400)


class EnvManagedTest(unittest.TestCase):
    def test_env_connection_refuses_changes(self):
        cpa = FakeCPA()
        s = ManagerServer(env={"CPA_UPSTREAM_URL": cpa.url, "CPA_MANAGEMENT_KEY": cpa.key})
        try:
            status, info = s.json("GET", "/usage-service/info")
            self.assertTrue(info["configured"])
            status, resp = s.json("POST", "/setup", {"cpaBaseUrl": "http://elsewhere:8317",
                                                     "cpaManagementKey": cpa.key}, key=s.admin_key)
            self.assertEqual((status, resp["code"]), (409, "setup_env_managed"))
            status, resp = s.json("PUT", "/usage-service/config",
                                  {"config": {"collector": {"enabled": True, "batchSize": 7}}},
                                  key=s.admin_key)
            self.assertEqual((status, resp["code"]), (409, "connection_env_managed"))
            status, cfg = s.json("GET", "/usage-service/config", key=s.admin_key)
            self.assertEqual(cfg["source"], "env")
            self.assertIsNone(s.setting("manager_config_v1"))
            self.assertNotIn(cpa.key, s.log())
        finally:
            s.stop()
            cpa.close()


if __name__ == "__main__":
    unittest.main()
