"""Persistence modes beyond cookie insert (docs/behaviour.md#persistence): prefix and rewrite
cookies, learned session cookies, source addresses, signed and dated cookies,
replicas agreeing, leastconn.

Every test starts its own fake servers (they name themselves in X-Server) and
gateway(s) on 127.0.0.1, and asserts which server answered.
"""

import os
import re
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from harness import (GatewayTestCase, LOCAL, Http11Client, basic_config, count_servers,  # noqa: E402
                     get_from, srv_cookie, main)

NAMES = ("s1", "s2", "s3")


def setcookie_path(name, value, attrs=None):
    q = {"name": name, "value": value}
    if attrs:
        q["attrs"] = attrs
    return "/setcookie?" + urllib.parse.urlencode(q)


def cookie_seen(server, name):
    """Values of cookie `name` in the Cookie header of server's last request."""
    req = server.requests[-1]
    out = []
    for k, v in req.headers:
        if k.lower() == "cookie":
            for pair in v.split(";"):
                n, _, val = pair.strip().partition("=")
                if n == name:
                    out.append(val)
    return out


class PrefixAndRewriteTest(GatewayTestCase):
    def test_prefix_round_trip(self):
        s = self.servers(*NAMES)
        gw = self.gateway(basic_config(s, tls=False, persistence={
            "cookie": {"mode": "prefix", "app_cookie": "JSESSIONID"}}))
        r = self.fresh_get(gw, "http", setcookie_path("JSESSIONID", "abc123"))
        self.assertStatus(r, 200, gw)
        owner = r.header("x-server")
        values = r.set_cookies("JSESSIONID")
        self.assertEqual(len(values), 1, r.headers)
        value = values[0]["value"]
        self.assertRegex(value, r"^[A-Za-z0-9_.-]+~abc123$", "prefix mode must send ID~value")
        self.assertEqual(r.set_cookies("SRV"), [], "prefix mode inserts no cookie of its own")
        by = {x.name: x for x in s}
        for _ in range(10):
            r = self.fresh_get(gw, "http", "/", headers=[("Cookie", "JSESSIONID=%s; other=1" % value)])
            self.assertEqual(r.header("x-server"), owner)
            # The server sees exactly what it set, and other cookies untouched.
            self.assertEqual(cookie_seen(by[owner], "JSESSIONID"), ["abc123"])
            self.assertEqual(cookie_seen(by[owner], "other"), ["1"])
            self.assertEqual(r.set_cookies("JSESSIONID"), [], "a valid prefixed cookie is not set again")

    def test_prefix_without_tilde_is_the_apps_own_value(self):
        s = self.servers(*NAMES)
        gw = self.gateway(basic_config(s, tls=False, persistence={
            "cookie": {"mode": "prefix", "app_cookie": "JSESSIONID"}}))
        r = self.fresh_get(gw, "http", "/", headers=[("Cookie", "JSESSIONID=plain")])
        self.assertStatus(r, 200, gw)
        by = {x.name: x for x in s}
        self.assertEqual(cookie_seen(by[r.header("x-server")], "JSESSIONID"), ["plain"])

    def test_rewrite_round_trip(self):
        s = self.servers(*NAMES)
        gw = self.gateway(basic_config(s, tls=False, persistence={
            "cookie": {"name": "SRV", "mode": "rewrite"}}))
        r = self.fresh_get(gw, "http", "/")
        self.assertEqual(r.set_cookies("SRV"), [], "rewrite mode never inserts a cookie")
        r = self.fresh_get(gw, "http", setcookie_path("SRV", "placeholder"))
        owner = r.header("x-server")
        value = srv_cookie(r)
        self.assertIsNotNone(value, r.headers)
        self.assertNotEqual(value, "placeholder", "the server's value must be replaced")
        for _ in range(10):
            r = self.fresh_get(gw, "http", "/", headers=[("Cookie", "SRV=" + value)])
            self.assertEqual(r.header("x-server"), owner)


class LearnTest(GatewayTestCase):
    def setUp(self):
        self.s = self.servers(*NAMES)
        self.gw = self.gateway(basic_config(self.s, tls=False, persistence={
            "learn": {"cookie": "JSESSIONID", "ttl": "30m"}}))

    def test_learned_session_sticks_across_fresh_connections(self):
        r = self.fresh_get(self.gw, "http", setcookie_path("JSESSIONID", "learn-me"))
        owner = r.header("x-server")
        self.assertEqual(r.set_cookies("SRV"), [], "learn alone inserts no cookie")
        for _ in range(12):
            r = self.fresh_get(self.gw, "http", "/", headers=[("Cookie", "JSESSIONID=learn-me")])
            self.assertEqual(r.header("x-server"), owner)
        self.assertTrue(any(" learn-hit " in line for line in self.gw.wait_log_lines(13)),
                        "access log shows no learn-hit")

    def test_cleared_cookie_forgets_the_session(self):
        r = self.fresh_get(self.gw, "http", setcookie_path("JSESSIONID", "gone"))
        owner = r.header("x-server")
        # The owner clears its cookie: reach it through the learned entry.
        r = self.fresh_get(self.gw, "http", setcookie_path("JSESSIONID", "gone", "Max-Age=0"),
                           headers=[("Cookie", "JSESSIONID=gone")])
        self.assertEqual(r.header("x-server"), owner)
        seen = count_servers(self.fresh_get(self.gw, "http", "/", headers=[("Cookie", "JSESSIONID=gone")])
                             for _ in range(9))
        self.assertEqual(len(seen), 3, "a forgotten session must be balanced again: %r" % seen)


class SourceTest(GatewayTestCase):
    def test_each_client_address_sticks(self):
        s = self.servers(*NAMES)
        gw = self.gateway(basic_config(s, tls=False, persistence={"source": {"ttl": "30m"}}))
        port = gw.port("http")
        owners = {}
        for i in range(2, 10):
            ip = "127.0.0.%d" % i
            first = get_from(ip, port).getheader("x-server")
            owners[ip] = first
            for _ in range(4):
                self.assertEqual(get_from(ip, port).getheader("x-server"), first, ip)
        self.assertEqual(len(set(owners.values())), 3,
                         "8 client addresses should spread over all servers: %r" % owners)


class SignedDatedCookieTest(GatewayTestCase):
    def secret_file(self, *lines):
        d = self.temp_dir("sag-secret-")
        p = os.path.join(d, "secrets")
        with open(p, "w") as f:
            f.write("\n".join(lines) + "\n")
        return p

    def test_tampered_signed_cookie_gets_a_fresh_one(self):
        s = self.servers(*NAMES)
        gw = self.gateway(basic_config(s, tls=False, persistence={"cookie": {
            "name": "SRV", "secret_file": self.secret_file("k-new", "k-old")}}))
        value = srv_cookie(self.fresh_get(gw, "http", "/"))
        self.assertEqual(len(value.split(".")), 4, "dated + signed: ID.LAST.CREATED.MAC, got %r" % value)
        flipped = value[:-3] + ("A" if value[-3] != "A" else "B") + value[-2:]
        r = self.fresh_get(gw, "http", "/", headers=[("Cookie", "SRV=" + flipped)])
        self.assertStatus(r, 200, gw)
        fresh = srv_cookie(r)
        self.assertIsNotNone(fresh, "a tampered cookie must be replaced")
        self.assertNotEqual(fresh, flipped)
        lines = gw.wait_log_lines(2)
        self.assertIn(" invalid ", lines[-1])

    def test_idle_expired_cookie_gets_a_fresh_one(self):
        s = self.servers(*NAMES)
        gw = self.gateway(basic_config(s, tls=False, persistence={"cookie": {
            "name": "SRV", "max_idle": "2s", "max_life": "1h"}}))
        value = srv_cookie(self.fresh_get(gw, "http", "/"))
        r = self.fresh_get(gw, "http", "/", headers=[("Cookie", "SRV=" + value)])
        self.assertIsNone(srv_cookie(r), "a fresh valid cookie is not set again")
        time.sleep(3.2)
        r = self.fresh_get(gw, "http", "/", headers=[("Cookie", "SRV=" + value)])
        self.assertIsNotNone(srv_cookie(r), "an idle-expired cookie must be replaced")
        self.assertIn(" expired ", gw.wait_log_lines(3)[-1])

    def test_replicas_with_reordered_servers_agree(self):
        s = self.servers(*NAMES)
        secret = self.secret_file("shared-secret")
        cfg_a = basic_config(s, tls=False, persistence={"cookie": {"name": "SRV", "secret_file": secret}})
        cfg_b = basic_config(list(reversed(s)), tls=False,
                             persistence={"cookie": {"name": "SRV", "secret_file": secret}})
        a, b = self.gateway(cfg_a), self.gateway(cfg_b)
        pinned = {}
        for _ in range(12):
            r = self.fresh_get(a, "http", "/")
            pinned.setdefault(r.header("x-server"), srv_cookie(r))
        self.assertEqual(len(pinned), 3, pinned)
        for owner, value in pinned.items():
            for gw in (a, b):
                r = self.fresh_get(gw, "http", "/", headers=[("Cookie", "SRV=" + value)])
                self.assertEqual(r.header("x-server"), owner, "replica disagrees on %s" % value)


class LeastConnTest(GatewayTestCase):
    def test_leastconn_avoids_a_busy_server(self):
        import threading
        s = self.servers(*NAMES)
        cfg = basic_config(s, tls=False)
        cfg["backends"][0]["balance"] = "leastconn"
        gw = self.gateway(cfg)
        # Pin three slow requests on s1 through its cookie.
        cookie = None
        for _ in range(6):
            r = self.fresh_get(gw, "http", "/")
            if r.header("x-server") == "s1":
                cookie = srv_cookie(r)
                break
        self.assertIsNotNone(cookie)
        threads = [threading.Thread(target=self.fresh_get,
                                    args=(gw, "http", "/slow?ms=2500"),
                                    kwargs={"headers": [("Cookie", "SRV=" + cookie)]})
                   for _ in range(3)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        seen = count_servers(self.fresh_get(gw, "http", "/") for _ in range(10))
        for t in threads:
            t.join()
        self.assertNotIn("s1", seen, "leastconn sent new sessions to the busy server: %r" % seen)
        self.assertEqual(set(seen), {"s2", "s3"}, seen)


if __name__ == "__main__":
    main()
