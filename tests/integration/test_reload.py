"""SIGHUP reload (docs/behaviour.md#reload, SPEC §7): the whole file is read
and validated first; then new connections and requests use the new
configuration, servers keep their identity by name, and nothing a client
holds breaks.

Fake servers name themselves in X-Server; each test drives a real gateway
process through its config file, SIGHUP, its admin listener and real
clients (keep-alive HTTP/1.1, TLS, HTTP/2, WebSocket)."""

import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from admin import Admin, parse_metrics, value  # noqa: E402
from gateway import make_cert  # noqa: E402
from h2client import H2Client  # noqa: E402
from harness import (LOCAL, GatewayTestCase, Http11Client, basic_config, main,  # noqa: E402
                     srv_cookie, wait_until)
from wsclient import OP_TEXT, WsClient  # noqa: E402

NAMES = ("s1", "s2", "s3")


def server_entry(s, **kw):
    e = {"name": s.name, "address": "127.0.0.1:%d" % s.port}
    e.update(kw)
    return e


class ReloadTest(GatewayTestCase):
    def config(self, servers, **kw):
        cfg = basic_config(servers, **kw)
        cfg["admin"] = {"bind": "127.0.0.1:0"}
        return cfg

    def reload(self, gw, cfg, expect="reloaded"):
        gw.write_config(cfg)
        line = gw.reload_and_wait()
        self.assertIn(expect, line, gw.describe())
        return line

    def metrics(self, gw):
        a = Admin(gw)
        try:
            r = a.get("/metrics")
        finally:
            a.conn.close()
        self.assertEqual(r.status, 200, r.text)
        return parse_metrics(r.text)

    def admin(self, gw):
        a = Admin(gw)
        self.addCleanup(a.conn.close)
        return a

    def cookies_by_server(self, gw, listener="http"):
        return self.sticky_cookies(gw, listener, want=3)

    def assert_cookies_hit(self, gw, cookies, listener="http"):
        for name, cookie in cookies.items():
            r = self.fresh_get(gw, listener, "/", headers=[("Cookie", "SRV=" + cookie)])
            self.assertStatus(r, 200, gw)
            self.assertEqual(r.header("x-server"), name, "cookie of %s" % name)

    # ------------------------------------------------------------------ metrics
    def test_metrics_count_reloads_and_a_failed_one_changes_nothing(self):
        s = self.servers(*NAMES)
        cfg = self.config(s, tls=False)
        gw = self.gateway(cfg)
        m = self.metrics(gw)
        self.assertEqual(value(m, "gateway_config_reloads_total", result="success"), 0)
        self.assertEqual(value(m, "gateway_config_reloads_total", result="failure"), 0)
        started = value(m, "gateway_config_last_reload_success_timestamp_seconds")
        self.assertLess(abs(started - time.time()), 60)

        time.sleep(0.05)
        self.reload(gw, cfg)
        m = self.metrics(gw)
        self.assertEqual(value(m, "gateway_config_reloads_total", result="success"), 1)
        self.assertGreater(value(m, "gateway_config_last_reload_success_timestamp_seconds"), started)

        # One good change (s3 removed) and one error: nothing changes.
        bad = self.config(s[:2], tls=False, timeouts={"client": "soon"})
        line = self.reload(gw, bad, expect="reload refused")
        self.assertIn("1 error", line)
        err = gw.stderr()
        self.assertRegex(err, r"SIGHUP: .*gateway\.yaml:\d+:\d+: .*")
        m = self.metrics(gw)
        self.assertEqual(value(m, "gateway_config_reloads_total", result="failure"), 1)
        self.assertEqual(value(m, "gateway_config_reloads_total", result="success"), 1)
        seen = {self.fresh_get(gw, "http", "/").header("x-server") for _ in range(9)}
        self.assertEqual(seen, set(NAMES), "s3 must still serve after a refused reload")

    def test_a_bad_certificate_refuses_the_reload_and_the_old_one_is_served(self):
        s = self.servers(*NAMES)
        certs = make_cert(self.temp_dir("sag-certs-"))
        cfg = self.config(s, certs_dir=certs)
        gw = self.gateway(cfg)
        self.assertStatus(self.fresh_get(gw, "https", "/"), 200, gw)
        # The key no longer matches its certificate.
        pem = os.path.join(certs, "dev.pem")
        with open(pem) as f:
            text = f.read()
        cert = text[:text.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----\n")]
        key = subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                              "ec_paramgen_curve:P-256"], stdout=subprocess.PIPE, check=True,
                             timeout=30).stdout.decode()
        with open(pem, "w") as f:
            f.write(cert + key)
        line = self.reload(gw, cfg, expect="reload refused")
        self.assertIn("listener 'https'", gw.stderr())
        self.assertNotIn("reloaded", line)
        self.assertStatus(self.fresh_get(gw, "https", "/"), 200, gw)

    # ---------------------------------------------------------------- identity
    def test_reordered_servers_and_a_changed_weight_keep_every_cookie(self):
        s = self.servers(*NAMES)
        gw = self.gateway(self.config(s, tls=False))
        cookies = self.cookies_by_server(gw)
        entries = [server_entry(s[2]), server_entry(s[0], weight=10), server_entry(s[1])]
        line = self.reload(gw, self.config(entries, tls=False))
        self.assertIn("no server or listener changed", line)
        self.assert_cookies_hit(gw, cookies)
        api = self.admin(gw).json("/api/backends/app/servers/s1")
        self.assertEqual(api["weight"], 10, api)

    def test_a_down_server_stays_down_across_a_reload(self):
        s = self.servers(*NAMES)
        hc = {"type": "http", "path": "/health", "interval": "300ms", "rise": 2, "fall": 1}
        gw = self.gateway(self.config(s, tls=False, health_check=hc))
        admin = self.admin(gw)
        s[1].stop()
        self.assertTrue(wait_until(
            lambda: admin.json("/api/backends/app/servers/s2")["health"] == "down", timeout=5))
        before = value(self.metrics(gw), "gateway_retries_total", backend="app")
        # A reload that starts s2 as new (up) would send it requests: they
        # would fail and be retried elsewhere, or fail.
        self.reload(gw, self.config(s, tls=False, health_check=hc))
        self.assertEqual(admin.json("/api/backends/app/servers/s2")["health"], "down")
        for _ in range(9):
            r = self.fresh_get(gw, "http", "/")
            self.assertStatus(r, 200, gw)
            self.assertNotEqual(r.header("x-server"), "s2")
        self.assertEqual(value(self.metrics(gw), "gateway_retries_total", backend="app"), before)
        # And its checks go on: back, it comes up.
        s[1].start()
        self.assertTrue(wait_until(
            lambda: admin.json("/api/backends/app/servers/s2")["health"] == "up", timeout=5))

    def test_a_removed_servers_sessions_move_once_and_stay(self):
        s = self.servers(*NAMES)
        gw = self.gateway(self.config(s, tls=False))
        cookies = self.cookies_by_server(gw)
        line = self.reload(gw, self.config([s[0], s[2]], tls=False))
        self.assertIn("servers removed: app/s2", line)
        self.assert_cookies_hit(gw, {"s1": cookies["s1"], "s3": cookies["s3"]})
        s[1].clear()
        r = self.fresh_get(gw, "http", "/", headers=[("Cookie", "SRV=" + cookies["s2"])])
        self.assertStatus(r, 200, gw)
        moved_to = r.header("x-server")
        self.assertIn(moved_to, ("s1", "s3"))
        fresh = srv_cookie(r)
        self.assertTrue(fresh, "the moved session gets a cookie for its new server")
        for _ in range(4):
            r = self.fresh_get(gw, "http", "/", headers=[("Cookie", "SRV=" + fresh)])
            self.assertEqual(r.header("x-server"), moved_to)
        self.assertEqual(s[1].requests, [], "a removed server takes no request")

    def test_an_added_server_takes_new_sessions(self):
        s = self.servers(*NAMES, "s4")
        gw = self.gateway(self.config(s[:3], tls=False))
        cookies = self.cookies_by_server(gw)
        line = self.reload(gw, self.config(s, tls=False))
        self.assertIn("servers added: app/s4", line)
        seen = {self.fresh_get(gw, "http", "/").header("x-server") for _ in range(12)}
        self.assertIn("s4", seen)
        self.assert_cookies_hit(gw, cookies)

    # ---------------------------------------------------------------- secrets
    def secret_file(self, *lines):
        p = os.path.join(self.temp_dir("sag-secret-"), "secrets")
        with open(p, "w") as f:
            f.write("\n".join(lines) + "\n")
        return p

    def test_secret_rotation_in_three_reloads_breaks_no_session(self):
        s = self.servers(*NAMES)
        path = self.secret_file("old")

        def cfg():
            return self.config(s, tls=False, persistence={"cookie": {"name": "SRV", "secret_file": path}})

        gw = self.gateway(cfg())
        old_cookies = self.cookies_by_server(gw)
        # (1) the new secret appended: the old one still signs.
        with open(path, "w") as f:
            f.write("old\nnew\n")
        self.reload(gw, cfg())
        self.assert_cookies_hit(gw, old_cookies)
        step1 = self.cookies_by_server(gw)
        # (2) the new one first: it signs; old cookies still verify and are
        # re-signed as they come.
        with open(path, "w") as f:
            f.write("new\nold\n")
        self.reload(gw, cfg())
        self.assert_cookies_hit(gw, old_cookies)
        self.assert_cookies_hit(gw, step1)
        resigned = {}
        for name, c in old_cookies.items():
            r = self.fresh_get(gw, "http", "/", headers=[("Cookie", "SRV=" + c)])
            self.assertEqual(r.header("x-server"), name)
            resigned[name] = srv_cookie(r) or c
        for name, c in old_cookies.items():
            self.assertNotEqual(resigned[name], c, "a cookie signed by the old secret is re-signed")
        # (3) the old one removed: re-signed cookies keep their servers.
        with open(path, "w") as f:
            f.write("new\n")
        self.reload(gw, cfg())
        self.assert_cookies_hit(gw, resigned)

    # ------------------------------------------------------ open connections
    def test_idle_keepalive_h2_and_websocket_connections_survive_a_reload(self):
        s = self.servers(*NAMES)
        cfg = self.config(s)
        gw = self.gateway(cfg)
        h1 = Http11Client(LOCAL, gw.port("http"), cookies=True)
        self.addCleanup(h1.close)
        self.assertEqual(h1.get("/").status, 200)
        h2 = H2Client(LOCAL, gw.port("https"))
        self.addCleanup(h2.close)
        self.assertEqual(h2.get("/").status, 200)
        ws = WsClient(LOCAL, gw.port("http"), path="/ws")
        self.addCleanup(ws.shutdown)
        self.assertTrue(ws.upgraded, ws.response)
        ws.send_text("before")
        self.assertEqual(ws.recv_message(timeout=5)[1], b"before")

        # A weight change and a new server: a real new generation.
        s4 = self.servers("s4")
        self.reload(gw, self.config(list(s) + [s4]))
        for _ in range(3):
            self.assertEqual(h1.get("/").status, 200)
            self.assertEqual(h2.get("/").status, 200)
        self.assertEqual(h1.connections, 1, "the keep-alive connection was not closed")
        ws.send_text("after")
        self.assertEqual(ws.recv_message(timeout=5)[1], b"after")
        # New requests on the old HTTP/2 connection see the new generation:
        # a cookie of the new server (unknown to the old one) reaches it.
        cookie = None
        for _ in range(12):
            r = self.fresh_get(gw, "http", "/")
            if r.header("x-server") == "s4":
                cookie = srv_cookie(r)
                break
        self.assertTrue(cookie, "the new server takes new sessions")
        st = h2.get("/", headers=[("cookie", "SRV=" + cookie)])
        self.assertEqual((st.status, st.header("x-server")), (200, "s4"))

    def test_a_listener_added_and_one_removed(self):
        s = self.servers(*NAMES)
        gw = self.gateway(self.config(s, tls=False))
        old_port = gw.port("http")
        cfg = self.config(s, tls=False)
        cfg["listeners"] = [{"name": "http2nd", "bind": "127.0.0.1:0", "backend": "app"}]
        line = self.reload(gw, cfg)
        self.assertIn("listeners opened: http2nd", line)
        self.assertIn("listeners closed: http", line)
        self.assertStatus(self.fresh_get(gw, "http2nd", "/"), 200, gw)
        import socket
        with self.assertRaises(OSError):
            socket.create_connection((LOCAL, old_port), timeout=2).close()

    def test_the_access_log_is_reopened_so_logrotate_works(self):
        s = self.servers(*NAMES)
        d = self.temp_dir("sag-log-")
        log = os.path.join(d, "access.log")
        cfg = self.config(s, tls=False, access_log={"path": log})
        gw = self.gateway(cfg)
        self.assertStatus(self.fresh_get(gw, "http", "/one"), 200, gw)
        self.assertTrue(wait_until(lambda: os.path.exists(log) and "/one" in open(log).read()))
        os.rename(log, log + ".1")  # logrotate's move
        self.reload(gw, cfg)
        self.assertStatus(self.fresh_get(gw, "http", "/two"), 200, gw)
        self.assertTrue(wait_until(lambda: os.path.exists(log) and "/two" in open(log).read()),
                        "the reload reopens the log at its path")
        self.assertNotIn("/two", open(log + ".1").read())

    # -------------------------------------------------------------------- load
    def test_ten_reloads_under_mixed_load_fail_nothing(self):
        s = self.servers(*NAMES)
        a = self.config(s)
        b = self.config([server_entry(s[2]), server_entry(s[0], weight=50), server_entry(s[1])],
                        timeouts={"client": "31s"})
        gw = self.gateway(a)
        cookies = self.cookies_by_server(gw)
        stop = threading.Event()
        failures, counts = [], {"h1": 0, "tls": 0, "h2": 0}
        lock = threading.Lock()

        def keepalive():
            try:
                with Http11Client(LOCAL, gw.port("http")) as c:
                    i = 0
                    while not stop.is_set():
                        name = NAMES[i % 3]
                        r = c.get("/", headers=[("Cookie", "SRV=" + cookies[name])])
                        if r.status != 200 or r.header("x-server") != name:
                            failures.append(("h1", r.status, r.header("x-server"), name))
                        i += 1
                        with lock:
                            counts["h1"] += 1
                    if c.connections != 1:
                        failures.append(("h1 connections", c.connections))
            except Exception as e:  # noqa: BLE001
                failures.append(("h1", repr(e)))

        def fresh_tls():
            while not stop.is_set():
                try:
                    r = self.fresh_get(gw, "https", "/")
                    if r.status != 200:
                        failures.append(("tls", r.status))
                except Exception as e:  # noqa: BLE001
                    failures.append(("tls", repr(e)))
                with lock:
                    counts["tls"] += 1

        def h2():
            try:
                with H2Client(LOCAL, gw.port("https")) as c:
                    while not stop.is_set():
                        st = c.get("/", headers=[("cookie", "SRV=" + cookies["s2"])], timeout=10)
                        if st.status != 200 or st.header("x-server") != "s2":
                            failures.append(("h2", st.status, st.header("x-server")))
                        with lock:
                            counts["h2"] += 1
            except Exception as e:  # noqa: BLE001
                failures.append(("h2", repr(e)))

        threads = [threading.Thread(target=f) for f in (keepalive, keepalive, fresh_tls, h2)]
        for t in threads:
            t.start()
        # SAG_RELOADS: more reloads, faster, for the figure in the issue note.
        reloads = int(os.environ.get("SAG_RELOADS", "10"))
        pause = 8.0 / reloads
        try:
            for i in range(reloads):
                time.sleep(pause)
                self.reload(gw, b if i % 2 == 0 else a)
        finally:
            stop.set()
            for t in threads:
                t.join(20)
        self.assertEqual(failures, [], gw.describe())
        self.assertGreater(min(counts.values()), 10, counts)
        self.assertEqual(value(self.metrics(gw), "gateway_config_reloads_total", result="success"),
                         reloads)
        sys.stderr.write("\n%d reloads under load: %r requests, %d failed\n"
                         % (reloads, counts, len(failures)))


if __name__ == "__main__":
    main()
