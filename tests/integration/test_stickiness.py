"""Cookie persistence in insert mode (docs/behaviour.md#persistence) and balancing (docs/configuration.md balance, weight).

Every test starts three fake servers s1..s3 and a gateway with a TLS listener
`https` and a plain listener `http` in front of backend `app` with
`persistence: {cookie: {name: SRV, mode: insert}}` and no health checks.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from harness import (GatewayTestCase, LOCAL, Http11Client, basic_config, count_servers,  # noqa: E402
                     curl, srv_cookie, main)

NAMES = ("s1", "s2", "s3")


class StickinessTest(GatewayTestCase):
    def setUp(self):
        self.s = self.servers(*NAMES)
        self.gw = self.gateway(basic_config(self.s))

    def cookie_for_each_server(self, listener="https"):
        """{server name: SRV value} obtained from fresh (cookieless) requests."""
        out = {}
        for _ in range(30):
            r = self.fresh_get(self.gw, listener, "/")
            self.assertStatus(r, 200, self.gw)
            v = srv_cookie(r)
            self.assertIsNotNone(v, "a cookieless request got no Set-Cookie SRV: %r" % r)
            out.setdefault(r.header("x-server"), v)
            if len(out) == 3:
                return out
        self.fail("30 fresh requests did not reach all three servers: %r" % out)

    # ------------------------------------------------------------------ sticks
    def test_curl_with_cookie_jar_sticks_across_connections(self):
        jar = os.path.join(self.temp_dir("jar-"), "jar")
        url = self.gw.url("https", "/")
        first = curl(url, cookie_jar=jar)
        self.assertStatus(first, 200, self.gw)
        value = srv_cookie(first)
        self.assertTrue(value, "first response has no Set-Cookie SRV: %r" % first)
        server = first.header("x-server")
        self.assertIn(server, NAMES)
        for i in range(20):
            r = curl(url, cookie_jar=jar)   # a new curl process: a new connection
            self.assertStatus(r, 200, self.gw)
            self.assertEqual(r.header("x-server"), server, "request %d left the pinned server" % i)
            self.assertIsNone(srv_cookie(r), "valid cookie but Set-Cookie again: %r" % r)

    def test_cookie_sticks_on_one_keepalive_connection(self):
        with Http11Client(LOCAL, self.gw.port("https"), tls=True, cookies=True) as c:
            first = c.get("/")
            self.assertStatus(first, 200, self.gw)
            self.assertIsNotNone(srv_cookie(first))
            server = first.header("x-server")
            for i in range(20):
                r = c.get("/?i=%d" % i)
                self.assertStatus(r, 200, self.gw)
                self.assertEqual(r.header("x-server"), server)
                self.assertIsNone(srv_cookie(r), "valid cookie but Set-Cookie again: %r" % r)
            self.assertEqual(c.connections, 1, "the keep-alive connection was not kept")

    def test_every_server_can_be_pinned(self):
        cookies = self.cookie_for_each_server()
        self.assertEqual(len(set(cookies.values())), 3, "servers share a cookie value: %r" % cookies)
        for server, value in cookies.items():
            for listener in ("https", "http"):
                for _ in range(5):
                    r = self.fresh_get(self.gw, listener, "/", [("Cookie", "SRV=" + value)])
                    self.assertStatus(r, 200, self.gw)
                    self.assertEqual(r.header("x-server"), server,
                                     "cookie %s (%s) via %s" % (value, server, listener))

    def test_fresh_clients_are_balanced_round_robin(self):
        got = count_servers(self.fresh_get(self.gw, "http", "/") for _ in range(30))
        self.assertEqual(set(got), set(NAMES), "not every server was used: %r" % got)
        for n in NAMES:
            self.assertGreaterEqual(got[n], 5, "round robin far from even: %r" % got)

    def test_cookie_works_on_a_replica_and_after_restart(self):
        # The value names the server by an id from backend and server names only
        # (no secret here): another gateway with the same config agrees on it.
        cookies = self.cookie_for_each_server()
        replica = self.gateway(basic_config(self.s))
        for server, value in cookies.items():
            for listener in ("https", "http"):
                r = self.fresh_get(replica, listener, "/", [("Cookie", "SRV=" + value)])
                self.assertEqual(r.header("x-server"), server, "replica disagrees on %s" % value)
                self.assertIsNone(srv_cookie(r), "replica rejected the cookie: %r" % r)
        self.assertEqual(self.gw.stop(), 0, self.gw.describe())
        again = self.gateway(basic_config(self.s))
        for server, value in cookies.items():
            r = self.fresh_get(again, "https", "/", [("Cookie", "SRV=" + value)])
            self.assertEqual(r.header("x-server"), server, "restarted gateway lost the pin")

    # --------------------------------------------------- what the server sees
    def test_server_never_sees_the_persistence_cookie(self):
        cookies = self.cookie_for_each_server()
        server, value = sorted(cookies.items())[0]
        srv = {s.name: s for s in self.s}[server]
        cases = [
            ("a=1; SRV=%s; b=2" % value, [("a", "1"), ("b", "2")]),
            ("SRV=%s; a=1" % value, [("a", "1")]),
            ("a=1; SRV=%s" % value, [("a", "1")]),
            ("XSRV=x; SRV=%s; SRVX=y; srv=z" % value, [("XSRV", "x"), ("SRVX", "y"), ("srv", "z")]),
            ("SRV=%s" % value, []),
        ]
        for header, expected in cases:
            with self.subTest(cookie=header):
                srv.clear()
                r = self.fresh_get(self.gw, "https", "/headers", [("Cookie", header)])
                self.assertStatus(r, 200, self.gw)
                self.assertEqual(r.header("x-server"), server)
                rec = srv.requests
                self.assertEqual(len(rec), 1, rec)
                self.assertEqual(rec[0].cookies(), expected,
                                 "server saw Cookie %r" % rec[0].header_all("cookie"))
                for k, v in rec[0].headers:
                    self.assertNotIn(value, v, "the SRV value leaked in header %s" % k)

    def test_invalid_cookie_is_removed_too(self):
        for s in self.s:
            s.clear()
        r = self.fresh_get(self.gw, "http", "/headers", [("Cookie", "c=3; SRV=zzz")])
        self.assertStatus(r, 200, self.gw)
        rec = [q for s in self.s for q in s.requests]
        self.assertEqual(len(rec), 1)
        self.assertEqual(rec[0].cookies(), [("c", "3")])

    # -------------------------------------------------------------- Set-Cookie
    def test_set_cookie_only_when_absent_or_wrong(self):
        cookies = self.cookie_for_each_server()
        for server, value in cookies.items():
            r = self.fresh_get(self.gw, "https", "/", [("Cookie", "SRV=" + value)])
            self.assertIsNone(srv_cookie(r), "valid cookie, still Set-Cookie: %r" % r)
        for garbage in ("zzz", "", value + "x", value[:-1], "0" * 40, "%00"):
            with self.subTest(cookie=garbage):
                r = self.fresh_get(self.gw, "https", "/", [("Cookie", "SRV=" + garbage)])
                self.assertStatus(r, 200, self.gw)
                fresh = srv_cookie(r)
                self.assertTrue(fresh, "wrong cookie %r but no new Set-Cookie: %r" % (garbage, r))
                self.assertNotEqual(fresh, garbage)
                server = r.header("x-server")
                for _ in range(3):
                    r2 = self.fresh_get(self.gw, "https", "/", [("Cookie", "SRV=" + fresh)])
                    self.assertEqual(r2.header("x-server"), server, "fresh cookie does not pin")
                    self.assertIsNone(srv_cookie(r2))

    def check_attributes(self, listener, secure):
        r = self.fresh_get(self.gw, listener, "/")
        self.assertStatus(r, 200, self.gw)
        cs = r.set_cookies("SRV")
        self.assertEqual(len(cs), 1, r.headers)
        attrs = cs[0]["attrs"]
        self.assertEqual(attrs.get("path"), "/", cs[0]["raw"])
        self.assertIs(attrs.get("httponly"), True, cs[0]["raw"])
        self.assertEqual(str(attrs.get("samesite", "")).lower(), "lax", cs[0]["raw"])
        if secure:
            self.assertIs(attrs.get("secure"), True, "no Secure on TLS: " + cs[0]["raw"])
        else:
            self.assertNotIn("secure", attrs, "Secure on a plain listener: " + cs[0]["raw"])
        # max_age 0s: a session cookie; domain "": host-only
        self.assertNotIn("max-age", attrs, cs[0]["raw"])
        self.assertNotIn("expires", attrs, cs[0]["raw"])
        self.assertNotIn("domain", attrs, cs[0]["raw"])

    def test_set_cookie_attributes_on_tls_listener(self):
        self.check_attributes("https", secure=True)

    def test_set_cookie_attributes_on_plain_listener(self):
        self.check_attributes("http", secure=False)

    def test_cacheable_response_gets_no_cache_set_cookie(self):
        def cache_tokens(resp):
            return [t.strip().lower().replace(" ", "")
                    for v in resp.header_all("cache-control") for t in v.split(",")]

        r = self.fresh_get(self.gw, "https", "/cacheable")
        self.assertStatus(r, 200, self.gw)
        value = srv_cookie(r)
        self.assertTrue(value)
        self.assertIn('no-cache="set-cookie"', cache_tokens(r), r.headers)
        # with a valid cookie nothing is added and the server's header is intact
        r = self.fresh_get(self.gw, "https", "/cacheable", [("Cookie", "SRV=" + value)])
        self.assertIsNone(srv_cookie(r))
        self.assertEqual(cache_tokens(r), ["max-age=60"], r.headers)

    # --------------------------------------------------------------- redispatch
    def test_redispatch_when_pinned_server_is_down(self):
        cookies = self.cookie_for_each_server()
        victim = {s.name: s for s in self.s}["s2"]
        victim.stop()
        r = self.fresh_get(self.gw, "https", "/", [("Cookie", "SRV=" + cookies["s2"])])
        self.assertStatus(r, 200, self.gw)
        new_server = r.header("x-server")
        self.assertIn(new_server, ("s1", "s3"))
        fresh = srv_cookie(r)
        self.assertTrue(fresh, "redispatched but no new cookie: %r" % r)
        victim.start()   # back on the same port: the session stays where it went
        for _ in range(5):
            r = self.fresh_get(self.gw, "https", "/", [("Cookie", "SRV=" + fresh)])
            self.assertEqual(r.header("x-server"), new_server)


class WeightTest(GatewayTestCase):
    def test_weights_three_to_one(self):
        heavy, light = self.servers("heavy", "light")
        cfg = basic_config([{"name": "heavy", "address": heavy.address, "weight": 3},
                            {"name": "light", "address": light.address, "weight": 1}])
        gw = self.gateway(cfg)
        got = count_servers(self.fresh_get(gw, "http", "/") for _ in range(400))
        self.assertEqual(got["heavy"] + got["light"], 400, got)
        self.assertGreater(got["light"], 0, got)
        ratio = got["heavy"] / got["light"]
        self.assertTrue(3 * 0.85 <= ratio <= 3 * 1.15, "heavy:light = %r (ratio %.2f)" % (got, ratio))


if __name__ == "__main__":
    main()
