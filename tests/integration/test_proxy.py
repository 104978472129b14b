"""The CPA proxy: key swap, methods, bodies and query strings both ways, streaming of large
bodies, 428 before setup, 502 when CPA is down, passthrough families, CORS and OPTIONS."""

import json
import socket
import time
import unittest

from cpamp_testlib import FakeCPA, ManagerServer, request, make_temp_dir


class ProxyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cpa = FakeCPA()
        cls.s = ManagerServer()
        cls.key = cls.s.admin_key
        status, body = cls.s.json("POST", "/setup", {"cpaBaseUrl": cls.cpa.url,
                                                     "cpaManagementKey": cls.cpa.key},
                                  key=cls.key)
        assert status == 200, body

    @classmethod
    def tearDownClass(cls):
        cls.s.stop()
        cls.cpa.close()

    def test_methods_bodies_and_query_strings_with_key_swap(self):
        for method in ("GET", "PUT", "DELETE", "POST", "PATCH"):
            body = None if method == "GET" else {"value": method, "list": [1, 2]}
            status, hdrs, payload = self.s.call(method, "/v0/management/echo/x?name=a%20b&n=2",
                                                body, key=self.key,
                                                headers={"Content-Type": "application/json",
                                                         "X-CPAMP-Auth-File-Physical-Name": "f"})
            self.assertEqual(status, 200, payload)
            echo = json.loads(payload)
            self.assertEqual(echo["method"], method)
            self.assertEqual(echo["path"], "/v0/management/echo/x")
            self.assertEqual(echo["query"], "name=a%20b&n=2")
            self.assertEqual(echo["auth"], "Bearer " + self.cpa.key)
            self.assertNotIn("x-cpamp-auth-file-physical-name", echo["headers"])
            self.assertEqual(echo["headers"]["x-forwarded-for"], "127.0.0.1")
            if body is not None:
                self.assertEqual(json.loads(echo["body"]), body)
            self.assertEqual(hdrs.get("x-cpa-version"), "v7.2.140-fake")
            self.assertEqual(hdrs.get("access-control-allow-origin"), "*")

    def test_large_bodies_stream_both_ways(self):
        big = "y" * (20 * 1024 * 1024)
        status, _, payload = self.s.call("PUT", "/v0/management/echo", big, key=self.key)
        self.assertEqual(status, 200)
        self.assertEqual(len(json.loads(payload)["body"]), len(big))
        status, _, payload = self.s.call("GET", "/v0/management/big?n=%d" % (50 * 1024 * 1024),
                                         key=self.key)
        self.assertEqual(status, 200)
        self.assertEqual(len(payload), 50 * 1024 * 1024)

    def test_relayed_answer_honours_the_clients_connection_close(self):
        # One request with Connection: close: the answer says close and the server closes the
        # socket right after it (not after the keep-alive timeout).
        with socket.create_connection(("127.0.0.1", self.s.port), timeout=10) as sock:
            sock.sendall(("GET /v0/management/config HTTP/1.1\r\nHost: x\r\n"
                          "Authorization: Bearer %s\r\nConnection: close\r\n\r\n"
                          % self.key).encode())
            started = time.monotonic()
            data = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
            elapsed = time.monotonic() - started
        head = data.split(b"\r\n\r\n", 1)[0].decode().lower()
        self.assertTrue(head.startswith("http/1.1 200"), head)
        self.assertIn("connection: close", head)
        self.assertLess(elapsed, 3.0)
        # Without Connection: close the connection stays open for the next request.
        with socket.create_connection(("127.0.0.1", self.s.port), timeout=10) as sock:
            req = ("GET /v0/management/config HTTP/1.1\r\nHost: x\r\n"
                   "Authorization: Bearer %s\r\n\r\n" % self.key).encode()
            sock.sendall(req)
            first = sock.recv(65536)
            self.assertTrue(first.lower().startswith(b"http/1.1 200"), first[:80])
            self.assertNotIn(b"connection: close", first.lower().split(b"\r\n\r\n", 1)[0])

    def test_cpa_answers_are_relayed_verbatim(self):
        status, _, payload = self.s.call("GET", "/v0/management/config", key=self.key)
        self.assertEqual(status, 200)
        self.assertIn("usage-statistics-enabled", json.loads(payload))
        status, _, payload = self.s.call("GET", "/v0/management/nothing-here", key=self.key)
        self.assertEqual((status, payload), (404, b""))

    def test_reserved_heads_need_the_admin_key(self):
        self.assertEqual(self.s.json("GET", "/v0/management/config")[0], 401)
        status, body = self.s.json("GET", "/v0/management/config", key=self.cpa.key)
        self.assertEqual((status, body["code"]), (401, "invalid_admin_key"))

    def test_non_reserved_heads_pass_the_callers_credentials_through(self):
        status, _, payload = self.s.call("GET", "/v0/management/echo-plugin",
                                         key=self.cpa.key)
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(payload)["auth"], "Bearer " + self.cpa.key)
        status, _, _ = self.s.call("GET", "/v0/management/echo-plugin", key="nope")
        self.assertEqual(status, 401)  # CPA decides

    def test_model_list_is_unauthenticated_passthrough(self):
        status, _, payload = self.s.call("GET", "/v1/models", headers={"Authorization": "Bearer sk-client"})
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(payload)["auth"], "Bearer sk-client")
        self.assertEqual(self.s.json("POST", "/v1/models")[0], 405)

    def test_options_and_cors(self):
        status, hdrs, payload = self.s.call("OPTIONS", "/anything/at/all")
        self.assertEqual(status, 204)
        self.assertEqual(hdrs["access-control-allow-origin"], "*")
        self.assertEqual(hdrs["access-control-allow-methods"],
                         "GET, POST, PUT, PATCH, DELETE, OPTIONS")
        self.assertEqual(hdrs["access-control-allow-headers"], "Authorization, Content-Type")
        status, hdrs, payload = self.s.call("GET", "/no/such/path")
        self.assertEqual((status, payload), (404, b"404 page not found\n"))
        self.assertNotIn("access-control-allow-origin", hdrs)
        status, hdrs, payload = self.s.call("GET", "/management.html")
        self.assertEqual(status, 200)
        self.assertIn(b"<html", payload)
        self.assertTrue(hdrs["content-type"].startswith("text/html"))
        self.assertNotIn("access-control-allow-origin", hdrs)
        status, hdrs, _ = self.s.call("GET", "/")
        self.assertEqual((status, hdrs["location"]), (307, "/management.html"))


class ProxyEdgeTest(unittest.TestCase):
    def test_428_before_setup_and_502_when_cpa_down(self):
        s = ManagerServer()
        try:
            status, body = s.json("GET", "/v0/management/config", key=s.admin_key)
            self.assertEqual((status, body["code"]), (428, "usage_service_not_configured"))
            cpa = FakeCPA()
            self.assertEqual(s.json("POST", "/setup", {"cpaBaseUrl": cpa.url,
                                                        "cpaManagementKey": cpa.key},
                                    key=s.admin_key)[0], 200)
            cpa.close()
            status, body = s.json("PUT", "/v0/management/config", {"x": 1}, key=s.admin_key)
            self.assertEqual(status, 502)
            self.assertEqual(body["code"], "request_failed")
            self.assertIn("dial tcp 127.0.0.1:%d" % cpa.port, body["error"])
            # The server stays healthy.
            self.assertEqual(s.json("GET", "/health")[0], 200)
        finally:
            s.stop()

    def test_https_cpa_with_self_signed_certificate(self):
        import tempfile
        cpa = FakeCPA(tls_dir=make_temp_dir("cpamp-tls-"))
        s = ManagerServer()
        try:
            # Verification on: the self-signed certificate is refused with a clear 502.
            status, body = s.json("POST", "/setup", {"cpaBaseUrl": cpa.url,
                                                     "cpaManagementKey": cpa.key}, key=s.admin_key)
            self.assertEqual(status, 502, body)
            self.assertIn("tls", body["error"].lower())
            status, body = s.json("POST", "/setup", {"cpaBaseUrl": cpa.url,
                                                     "cpaManagementKey": cpa.key,
                                                     "tlsSkipVerify": True}, key=s.admin_key)
            self.assertEqual(status, 200, body)
            status, _, payload = s.call("PUT", "/v0/management/echo?x=1", {"a": 1},
                                        key=s.admin_key)
            self.assertEqual(status, 200, payload)
            echo = json.loads(payload)
            self.assertEqual(echo["auth"], "Bearer " + cpa.key)
            self.assertEqual(json.loads(echo["body"]), {"a": 1})
        finally:
            s.stop()
            cpa.close()

    def test_configured_cors_origins(self):
        s = ManagerServer(env={"USAGE_CORS_ORIGINS": "https://panel.example, https://b.example"})
        try:
            status, hdrs, _ = s.call("OPTIONS", "/health", headers={"Origin": "https://b.example"})
            self.assertEqual(hdrs["access-control-allow-origin"], "https://b.example")
            self.assertEqual(hdrs["vary"], "Origin")
            status, hdrs, _ = s.call("GET", "/health", headers={"Origin": "https://evil.example"})
            self.assertNotIn("access-control-allow-origin", hdrs)
            self.assertIn("access-control-allow-methods", hdrs)
        finally:
            s.stop()

    def test_panel_path_override(self):
        s = ManagerServer(wait=False, env={})
        s.stop()
        import os
        panel = os.path.join(s.workdir, "custom.html")
        with open(panel, "w") as f:
            f.write("<html>custom panel</html>")
        s2 = ManagerServer(workdir=s.workdir, env={"PANEL_PATH": panel})
        try:
            status, _, payload = s2.call("GET", "/management.html")
            self.assertEqual((status, payload), (200, b"<html>custom panel</html>"))
        finally:
            s2.stop()


if __name__ == "__main__":
    unittest.main()
