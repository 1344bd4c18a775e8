"""Headers toward the server and back (docs/behaviour.md#request-path): X-Forwarded-*, hop-by-hop removal.

One fake server `s1` behind a gateway with listeners `https` (TLS) and `http`
(plain); what the server saw is read from its recorded requests.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from harness import (GatewayTestCase, LOCAL, Http11Client, RawConnection, basic_config,  # noqa: E402
                     curl, main)

LISTENERS = ("https", "http")


def tokens(values):
    return [t.strip().lower() for v in values for t in v.split(",") if t.strip()]


def xff_list(rec):
    return [t.strip() for v in rec.header_all("x-forwarded-for") for t in v.split(",") if t.strip()]


class HeadersTestBase(GatewayTestCase):
    trusted = []

    def setUp(self):
        self.s1 = self.servers("s1")
        self.gw = self.gateway(basic_config([self.s1], forwarded={"trusted_proxies": self.trusted}))

    def send(self, listener, headers, path="/headers", method="GET", body=None):
        """One request on a new connection; returns (response, what s1 recorded)."""
        self.s1.clear()
        with Http11Client(LOCAL, self.gw.port(listener), tls=(listener == "https")) as c:
            r = c.request(method, path, headers, body)
        self.assertStatus(r, 200, self.gw)
        rec = self.s1.requests
        self.assertEqual(len(rec), 1, rec)
        return r, rec[0]


class UntrustedClientTest(HeadersTestBase):
    trusted = []

    def test_forwarded_headers_set_and_client_values_dropped(self):
        for listener in LISTENERS:
            with self.subTest(listener=listener):
                _, rec = self.send(listener, [
                    ("Host", "app.example"),
                    ("X-Forwarded-For", "1.2.3.4"),
                    ("X-Forwarded-Proto", "ftp"),
                    ("X-Forwarded-Host", "evil.example"),
                    ("X-Forwarded-Port", "1"),
                    ("x-forwarded-for", "5.6.7.8"),
                ])
                self.assertEqual(xff_list(rec), ["127.0.0.1"], rec.headers)
                self.assertEqual(rec.header_all("x-forwarded-proto"), [listener], rec.headers)
                self.assertEqual(rec.header_all("x-forwarded-host"), ["app.example"], rec.headers)
                self.assertEqual(rec.header_all("x-forwarded-port"),
                                 [str(self.gw.port(listener))], rec.headers)

    def test_host_is_kept_and_forwarded_host_matches_it(self):
        for listener in LISTENERS:
            with self.subTest(listener=listener):
                host = "127.0.0.1:%d" % self.gw.port(listener)
                _, rec = self.send(listener, [])   # http.client sends Host: 127.0.0.1:PORT
                self.assertEqual(rec.header_all("host"), [host], rec.headers)
                self.assertEqual(rec.header_all("x-forwarded-host"), [host], rec.headers)
                self.assertEqual(xff_list(rec), ["127.0.0.1"])

    def test_no_forwarded_header_by_default(self):
        _, rec = self.send("http", [])
        self.assertEqual(rec.header_all("forwarded"), [], rec.headers)

    def test_hop_by_hop_request_headers_never_reach_the_server(self):
        for listener in LISTENERS:
            with self.subTest(listener=listener):
                _, rec = self.send(listener, [
                    ("Connection", "keep-alive, X-Foo, Upgrade"),
                    ("Connection", "x-BAR"),
                    ("X-Foo", "foo"),
                    ("X-Bar", "bar"),
                    ("Keep-Alive", "timeout=5, max=7"),
                    ("TE", "gzip"),
                    ("Proxy-Connection", "keep-alive"),
                    ("Upgrade", "foo/1"),
                    ("X-Kept", "yes"),
                ])
                names = rec.header_names()
                for h in ("x-foo", "x-bar", "proxy-connection", "upgrade"):
                    self.assertNotIn(h, names, "%s reached the server: %r" % (h, rec.headers))
                self.assertNotIn("timeout=5, max=7", rec.header_all("keep-alive"), rec.headers)
                self.assertEqual([v for v in rec.header_all("te") if v.lower() != "trailers"], [],
                                 rec.headers)
                conn = tokens(rec.header_all("connection"))
                for t in ("x-foo", "x-bar", "upgrade"):
                    self.assertNotIn(t, conn, rec.headers)
                self.assertEqual(rec.header_all("x-kept"), ["yes"], rec.headers)

    def test_client_connection_close_is_not_forwarded(self):
        for listener in LISTENERS:
            with self.subTest(listener=listener):
                self.s1.clear()
                with RawConnection(LOCAL, self.gw.port(listener), tls=(listener == "https")) as c:
                    c.send(b"GET /headers HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    r = c.read_response(timeout=10)
                    self.assertStatus(r, 200, self.gw)
                    self.assertTrue(c.wait_closed(5), "gateway kept the connection after Connection: close")
                rec = self.s1.requests
                self.assertEqual(len(rec), 1)
                self.assertNotIn("close", tokens(rec[0].header_all("connection")),
                                 "the client's close reached the pooled server connection: %r"
                                 % rec[0].headers)

    def test_hop_by_hop_response_headers_never_reach_the_client(self):
        for listener in LISTENERS:
            with self.subTest(listener=listener, client="curl"):
                r = curl(self.gw.url(listener, "/hop"))
                self.check_hop_response(r)
            with self.subTest(listener=listener, client="http.client"):
                with Http11Client(LOCAL, self.gw.port(listener), tls=(listener == "https")) as c:
                    self.check_hop_response(c.get("/hop"))
                    self.check_hop_response(c.get("/hop"))   # and the connection still works

    def check_hop_response(self, r):
        self.assertStatus(r, 200, self.gw)
        self.assertEqual(r.header("x-server"), "s1")
        self.assertEqual(r.header_all("x-end-to-end"), ["kept"], r.headers)
        for h in ("x-custom-hop", "proxy-connection", "upgrade"):
            self.assertFalse(r.has_header(h), "%s reached the client: %r" % (h, r.headers))
        self.assertNotIn("timeout=5, max=100", r.header_all("keep-alive"), r.headers)
        conn = tokens(r.header_all("connection"))
        self.assertNotIn("x-custom-hop", conn, r.headers)
        self.assertNotIn("upgrade", conn, r.headers)
        self.assertEqual(r.body, b"hop\n")


class TrustedProxyTest(HeadersTestBase):
    trusted = ["127.0.0.0/8"]

    def test_trusted_client_value_is_kept_and_appended(self):
        for listener in LISTENERS:
            with self.subTest(listener=listener):
                _, rec = self.send(listener, [("X-Forwarded-For", "1.2.3.4")])
                self.assertEqual(xff_list(rec), ["1.2.3.4", "127.0.0.1"], rec.headers)
                _, rec = self.send(listener, [("X-Forwarded-For", "1.2.3.4"),
                                              ("X-Forwarded-For", "5.6.7.8")])
                self.assertEqual(xff_list(rec), ["1.2.3.4", "5.6.7.8", "127.0.0.1"], rec.headers)
                _, rec = self.send(listener, [])
                self.assertEqual(xff_list(rec), ["127.0.0.1"], rec.headers)


if __name__ == "__main__":
    main()
