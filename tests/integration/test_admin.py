"""The admin listener (docs/behaviour.md#admin-listener): stats page, /metrics, /api/backends (GET and
PUT), /healthz, basic auth.

Every test starts its own fake servers and a gateway with an `admin` section
(the harness gives `admin.bind` a free port: gw.port("admin")), and talks to
the admin listener over plain HTTP/1.1.
"""

import base64
import json
import os
import signal
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from harness import (GatewayTestCase, LOCAL, Http11Client, basic_config, connect_refused,  # noqa: E402
                     curl, srv_cookie, wait_until, main)
from admin import Admin, basic, parse_metrics, requests_total, series, value  # noqa: E402,F401

NAMES = ("s1", "s2", "s3")
USER, PASSWORD = "admin", "s3cret-p@ss:word"
ROUTES = ("/", "/metrics", "/api/backends", "/api/backends/app/servers/s1")
SERVER_KEYS = ("name", "address", "state", "health", "weight", "active", "requests", "pinned",
               "last_check")


class AdminTestCase(GatewayTestCase):
    auth = False

    def setUp(self):
        self.s = self.servers(*NAMES)
        admin = {"bind": "127.0.0.1:0"}
        if self.auth:
            d = self.temp_dir("sag-admin-")
            pw = os.path.join(d, "password")
            with open(pw, "w") as f:
                f.write(PASSWORD + "\n")
            admin["auth"] = {"user": USER, "password_file": pw}
        self.gw = self.gateway(basic_config(self.s, admin=admin))
        self.admin = Admin(self.gw, auth=basic(USER, PASSWORD) if self.auth else None)
        self.addCleanup(self.admin.close)

    def proxied(self, path="/", listener="http", headers=()):
        return self.fresh_get(self.gw, listener, path, headers=headers)


# --------------------------------------------------------------------- routes
class RoutesTest(AdminTestCase):
    def test_healthz(self):
        r = self.admin.get("/healthz")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.text.strip(), "ok")
        self.assertTrue(r.getheader("content-type").startswith("text/plain"))
        self.assertEqual(r.getheader("cache-control"), "no-store")

    def test_api_backends(self):
        r = self.admin.get("/api/backends")
        self.assertEqual(r.status, 200, r.text)
        self.assertTrue(r.getheader("content-type").startswith("application/json"))
        self.assertEqual(r.getheader("cache-control"), "no-store")
        doc = json.loads(r.body)
        self.assertEqual(len(doc["backends"]), 1)
        b = doc["backends"][0]
        self.assertEqual(b["name"], "app")
        self.assertEqual(b["balance"], "roundrobin")
        self.assertEqual([s["name"] for s in b["servers"]], list(NAMES))
        for s, fake in zip(b["servers"], self.s):
            for k in SERVER_KEYS:
                self.assertIn(k, s)
            self.assertEqual(s["address"], "127.0.0.1:%d" % fake.port)
            self.assertEqual(s["state"], "ready")
            self.assertEqual(s["health"], "up")
            self.assertEqual(s["weight"], 100)
            self.assertEqual(s["active"], 0)
            self.assertEqual(s["requests"], 0)
            self.assertEqual(s["pinned"], 0)
            self.assertIsInstance(s["last_check"], str)

    def test_requests_and_pinned_counts(self):
        r = self.proxied("/")
        self.assertStatus(r, 200, self.gw)
        owner, cookie = r.header("x-server"), srv_cookie(r)
        self.assertIsNotNone(cookie)
        for _ in range(4):   # pinned by the cookie: persistence hits
            r = self.proxied("/", headers=[("Cookie", "SRV=" + cookie)])
            self.assertEqual(r.header("x-server"), owner)
        s = wait_until(lambda: (lambda x: x if x["requests"] == 5 else None)(
            self.admin.server("app", owner)))
        self.assertTrue(s, self.admin.server("app", owner))
        self.assertEqual(s["active"], 0)
        self.assertEqual(s["pinned"], 4)
        for other in set(NAMES) - {owner}:
            self.assertEqual(self.admin.server("app", other)["requests"], 0)

    def test_stats_page(self):
        self.proxied("/")
        r = self.admin.get("/")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.getheader("content-type").startswith("text/html"))
        self.assertEqual(r.getheader("cache-control"), "no-store")
        page = r.text
        self.assertTrue(page.lstrip().lower().startswith("<!doctype html>"))
        self.assertRegex(page, r'<meta http-equiv="refresh" content="\d+">')
        for n, fake in zip(NAMES, self.s):
            self.assertIn(">%s<" % n, page)
            self.assertIn("127.0.0.1:%d" % fake.port, page)
        for col in ("state", "health", "weight", "active", "requests", "2xx", "5xx", "pinned",
                    "p50", "p99", "last check"):
            self.assertIn(col, page)

    def test_metrics_content_type_and_families(self):
        r = self.admin.get("/metrics")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.getheader("content-type").startswith("text/plain"))
        self.assertIn("version=0.0.4", r.getheader("content-type"))
        self.assertEqual(r.getheader("cache-control"), "no-store")
        m = parse_metrics(r.text)
        for n in NAMES:
            self.assertEqual(value(m, "gateway_server_up", backend="app", server=n), 1)
        for listener in ("https", "http"):
            self.assertIsNotNone(value(m, "gateway_connections_active", listener=listener))
        for result in ("ok", "failed"):
            self.assertIsNotNone(value(m, "gateway_tls_handshakes_total", listener="https",
                                       result=result))
        for result in ("hit", "miss", "redispatch", "invalid", "expired"):
            self.assertEqual(value(m, "gateway_persistence_total", backend="app", result=result), 0)
        self.assertEqual(value(m, "gateway_retries_total", backend="app"), 0)
        self.assertEqual(value(m, "gateway_affinity_store_errors_total"), 0)
        self.assertIn("# TYPE gateway_request_duration_seconds histogram", r.text)

    def test_unknown_paths_and_methods(self):
        for path in ("/nope", "/api", "/api/backends/app", "/api/backends/app/servers",
                     "/api/backends/app/servers/s1/x"):
            r = self.admin.get(path)
            self.assertEqual(r.status, 404, path)
            self.assertIn("error", json.loads(r.body))
        for method, path in (("POST", "/api/backends"), ("DELETE", "/api/backends/app/servers/s1"),
                             ("POST", "/metrics"), ("PUT", "/")):
            r = self.admin.request(method, path, body="{}")
            self.assertEqual(r.status, 405, (method, path))


# ------------------------------------------------------------------------ PUT
class PutTest(AdminTestCase):
    PATH = "/api/backends/app/servers/s2"

    def put(self, body, path=PATH):
        return self.admin.put(path, body)

    def test_drain_maint_weight_are_reflected(self):
        r = self.put({"state": "drain"})
        self.assertEqual(r.status, 200, r.text)
        s = json.loads(r.body)
        for k in SERVER_KEYS:
            self.assertIn(k, s)
        self.assertEqual((s["name"], s["state"], s["weight"]), ("s2", "drain", 100))
        self.assertEqual(self.admin.server("app", "s2")["state"], "drain")

        r = self.put({"weight": 7})
        self.assertEqual(r.status, 200, r.text)
        self.assertEqual(json.loads(r.body)["weight"], 7)
        got = self.admin.server("app", "s2")
        self.assertEqual((got["state"], got["weight"]), ("drain", 7))

        r = self.put({"state": "maint", "weight": 0})
        self.assertEqual(r.status, 200, r.text)
        got = self.admin.server("app", "s2")
        self.assertEqual((got["state"], got["weight"]), ("maint", 0))
        # A server in maint takes no new session.
        seen = {self.proxied("/").header("x-server") for _ in range(9)}
        self.assertNotIn("s2", seen)

        r = self.put({})   # no change
        self.assertEqual(r.status, 200, r.text)
        self.assertEqual(json.loads(r.body)["state"], "maint")

        r = self.put({"state": "ready", "weight": 100})
        self.assertEqual(r.status, 200, r.text)
        got = self.admin.server("app", "s2")
        self.assertEqual((got["state"], got["weight"]), ("ready", 100))
        # Others untouched throughout.
        for n in ("s1", "s3"):
            got = self.admin.server("app", n)
            self.assertEqual((got["state"], got["weight"]), ("ready", 100))

    def test_drain_keeps_pinned_sessions_only(self):
        r = self.proxied("/")
        owner, cookie = r.header("x-server"), srv_cookie(r)
        self.assertEqual(self.put({"state": "drain"}, "/api/backends/app/servers/" + owner).status,
                         200)
        for _ in range(3):
            r = self.proxied("/", headers=[("Cookie", "SRV=" + cookie)])
            self.assertEqual(r.header("x-server"), owner)
        seen = {self.proxied("/").header("x-server") for _ in range(6)}
        self.assertNotIn(owner, seen)

    def test_maint_moves_pinned_sessions_and_they_stay_moved(self):
        r = self.proxied("/")
        owner, cookie = r.header("x-server"), srv_cookie(r)
        path = "/api/backends/app/servers/" + owner
        self.assertEqual(self.put({"state": "maint"}, path).status, 200)
        r = self.proxied("/", headers=[("Cookie", "SRV=" + cookie)])
        self.assertEqual(r.status, 200)
        moved_to, fresh = r.header("x-server"), srv_cookie(r)
        self.assertNotEqual(moved_to, owner)
        self.assertIsNotNone(fresh, "a moved session gets a new cookie")
        self.assertEqual(self.put({"state": "ready"}, path).status, 200)
        for _ in range(3):
            r = self.proxied("/", headers=[("Cookie", "SRV=" + fresh)])
            self.assertEqual(r.header("x-server"), moved_to, "the session bounced back")

    def test_bad_bodies_are_400(self):
        bad = ['', 'not json', '[]', '"ready"', 'null', '{', '{"state": "drain",}',
               '{"state": "drain"} trailing', '{"state": "up"}', '{"state": "DRAIN"}',
               '{"state": 1}', '{"state": null}', '{"weight": -1}', '{"weight": 1001}',
               '{"weight": 10.5}', '{"weight": "10"}', '{"weight": true}', '{"color": "red"}',
               '{"state": "drain", "extra": 1}', '{"state": "drain", "state": "ready"}',
               "{'state': 'drain'}"]
        for body in bad:
            with self.subTest(body=body):
                r = self.put(body)
                self.assertEqual(r.status, 400, (body, r.status, r.text))
                self.assertTrue(r.getheader("content-type").startswith("application/json"))
                err = json.loads(r.body)
                self.assertIsInstance(err.get("error"), str)
                self.assertTrue(err["error"])
        got = self.admin.server("app", "s2")   # nothing applied
        self.assertEqual((got["state"], got["weight"]), ("ready", 100))

    def test_unknown_names_are_404(self):
        for path in ("/api/backends/nope/servers/s1", "/api/backends/app/servers/nope"):
            r = self.put({"state": "drain"}, path)
            self.assertEqual(r.status, 404, path)
            self.assertIsInstance(json.loads(r.body).get("error"), str)


# ----------------------------------------------------------------------- auth
class AuthTest(AdminTestCase):
    auth = True

    def test_every_route_but_healthz_needs_auth(self):
        wrong = [None, basic(USER, "wrong"), basic("root", PASSWORD), basic(USER, PASSWORD + "x"),
                 "Bearer " + base64.b64encode(b"x").decode(), "Basic !!!"]
        for path in ROUTES + ("/nope",):
            for a in wrong:
                with self.subTest(path=path, auth=a):
                    h = {"Authorization": a} if a else {}
                    r = self.admin.get(path, headers=h, auth=False)
                    self.assertEqual(r.status, 401, (path, a, r.text))
                    self.assertEqual(r.getheader("www-authenticate"), 'Basic realm="sag"')
                    self.assertIn("error", json.loads(r.body))
        r = self.admin.put("/api/backends/app/servers/s1", {"state": "maint"}, auth=False)
        self.assertEqual(r.status, 401)
        self.assertEqual(self.admin.server("app", "s1")["state"], "ready")

    def test_healthz_stays_open(self):
        for h in ({}, {"Authorization": basic(USER, "wrong")}):
            r = self.admin.get("/healthz", headers=h, auth=False)
            self.assertEqual(r.status, 200)

    def test_correct_credentials_are_accepted(self):
        for path in ROUTES:
            r = self.admin.get(path)
            self.assertEqual(r.status, 200, (path, r.text))
        r = self.admin.put("/api/backends/app/servers/s1", {"state": "drain"})
        self.assertEqual(r.status, 200, r.text)
        self.assertEqual(self.admin.server("app", "s1")["state"], "drain")
        # curl's own basic auth too.
        r = curl("http://127.0.0.1:%d/api/backends" % self.gw.port("admin"),
                 extra_args=["-u", "%s:%s" % (USER, PASSWORD)])
        self.assertEqual(r.status, 200)


# -------------------------------------------------------------------- metrics
class MetricsCountTest(AdminTestCase):
    def test_one_increment_per_request_with_exact_codes(self):
        plan = [("/", 200)] * 3 + [("/status?code=404", 404)] * 2 + [("/status?code=201", 201)]
        for path, code in plan:
            r = self.proxied(path)
            self.assertStatus(r, code, self.gw)
        r = self.proxied("/", listener="https")
        self.assertStatus(r, 200, self.gw)
        want = {"200": 4, "404": 2, "201": 1}

        def settled():
            m = self.admin.metrics()
            got = {c: requests_total(m, backend="app", code=c) for c in want}
            return m if got == want and requests_total(m) == 7 else None

        m = wait_until(settled)
        self.assertTrue(m, self.admin.get("/metrics").text)
        # every series names a real server (no gateway answer yet), one per code seen
        for labels, v in series(m, "gateway_requests_total").items():
            d = dict(labels)
            self.assertIn(d["server"], NAMES)
            self.assertIn(d["code"], want)
            self.assertGreater(v, 0)
        # the histogram counts the same requests
        self.assertEqual(value(m, "gateway_request_duration_seconds_count", backend="app"), 7)
        self.assertEqual(value(m, "gateway_request_duration_seconds_bucket", backend="app",
                               le="+Inf"), 7)
        buckets = series(m, "gateway_request_duration_seconds_bucket", backend="app")
        by_le = sorted(((float(dict(k)["le"]), v) for k, v in buckets.items()))
        counts = [v for _, v in by_le]
        self.assertEqual(counts, sorted(counts), "buckets must be cumulative")
        self.assertGreater(value(m, "gateway_request_duration_seconds_sum", backend="app"), 0)
        self.assertGreaterEqual(value(m, "gateway_tls_handshakes_total", listener="https",
                                      result="ok"), 1)
        # persistence: the first request of each fresh connection was balanced
        self.assertEqual(value(m, "gateway_persistence_total", backend="app", result="miss"), 7)

        # Every server stopped: the gateway answers 503 itself, server="-".
        for s in self.s:
            s.stop()
        r = self.proxied("/")
        self.assertStatus(r, 503, self.gw)
        m = wait_until(lambda: (lambda m: m if value(m, "gateway_requests_total", backend="app",
                                                     server="-", code="503") == 1 else None)(
            self.admin.metrics()))
        self.assertTrue(m, self.admin.get("/metrics").text)
        self.assertEqual(requests_total(m), 8)
        self.assertEqual(requests_total(m, server="-"), 1)

    def test_active_connections_gauge(self):
        with Http11Client(LOCAL, self.gw.port("http")) as c:
            self.assertEqual(c.get("/").status, 200)
            m = wait_until(lambda: (lambda m: m if value(m, "gateway_connections_active",
                                                         listener="http") == 1 else None)(
                self.admin.metrics()))
            self.assertTrue(m, self.admin.get("/metrics").text)
        m = wait_until(lambda: (lambda m: m if value(m, "gateway_connections_active",
                                                     listener="http") == 0 else None)(
            self.admin.metrics()))
        self.assertTrue(m, self.admin.get("/metrics").text)


# ------------------------------------------------------------- graceful stop
class GracefulStopTest(AdminTestCase):
    def test_admin_answers_while_the_gateway_drains(self):
        result = {}

        def slow():
            try:
                result["r"] = self.proxied("/slow?ms=2000")
            except Exception as e:   # reported below
                result["e"] = e

        t = threading.Thread(target=slow)
        t.start()
        self.assertTrue(wait_until(lambda: any(r.path == "/slow" for s in self.s
                                               for r in s.requests)))
        self.gw.send_signal(signal.SIGTERM)
        # The client listeners close at once; the admin listener keeps answering.
        self.assertTrue(wait_until(lambda: connect_refused(LOCAL, self.gw.port("http")), 3))
        admin = Admin(self.gw)
        self.addCleanup(admin.close)
        self.assertEqual(admin.get("/healthz").status, 200)
        m = admin.metrics()
        self.assertEqual(value(m, "gateway_connections_active", listener="http"), 1)
        t.join(15)
        self.assertNotIn("e", result)
        self.assertEqual(result["r"].status, 200)
        self.assertEqual(self.gw.wait(15), 0, self.gw.describe())
        self.assertTrue(connect_refused(LOCAL, self.gw.port("admin")))


if __name__ == "__main__":
    main()
