"""WebSocket tunnelling (issue 5; docs/behaviour.md#request-path "HTTP/1.1 Upgrade: websocket is
tunnelled to the pinned server"): persistence and X-Forwarded-* apply to the
upgrade request, bytes flow both ways untouched, and the tunnel ends when
either side closes or it stays idle past timeouts.client.

The fake servers echo WebSocket frames on GET /ws (support/fake_server.py);
the client writes frames by hand (support/wsclient.py). Every test runs on
the plain listener `http` and the TLS one `https`.

Run against HAProxy instead of the gateway (to check the tests themselves):
SAG_TEST_STANDIN=haproxy (see support/standin.py).
"""

import hashlib
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from harness import LOCAL, download_sha256, main, srv_cookie, wait_until  # noqa: E402
from standin import ContractTestCase, h2_config  # noqa: E402
from wsclient import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PONG, OP_TEXT, WsClient,  # noqa: E402
                      WsClosed)

LISTENERS = ("http", "https")
MiB = 1 << 20


class WsTestCase(ContractTestCase):
    timeouts = None

    def setUp(self):
        self.s1, self.s2 = self.servers("s1", "s2")
        kw = {"timeouts": self.timeouts} if self.timeouts else {}
        self.gw = self.gateway(h2_config([self.s1, self.s2], **kw))
        self.by_name = {"s1": self.s1, "s2": self.s2}

    def ws(self, listener, path="/ws", headers=(), timeout=15, host_header=None):
        c = WsClient(LOCAL, self.gw.port(listener), tls=(listener == "https"), path=path,
                     headers=headers, timeout=timeout, host_header=host_header)
        self.addCleanup(c.shutdown)
        return c

    def assertUpgraded(self, c):
        self.assertTrue(c.upgraded, "no WebSocket upgrade: %r\n%s" % (c.response, self.gw.describe()))

    def server_record(self, c, path="/ws"):
        """The fake server's record of c's upgrade request (by the X-Server it answered with)."""
        name = c.response.header("x-server")
        self.assertIn(name, self.by_name, c.response)
        srv = self.by_name[name]
        recs = [r for r in srv.requests if r.target == path]
        self.assertEqual(len(recs), 1, "want one upgrade request for %s at %s: %r"
                         % (path, name, srv.requests))
        self.assertIsNotNone(recs[0].ws, "the server did not see a WebSocket upgrade: %r"
                             % recs[0].headers)
        return recs[0]

    def assertForwarded(self, rec, listener, host):
        """X-Forwarded-* as the gateway sets them for an untrusted client
        (test_http2's rule): every one present once, with the gateway's values."""
        got = sorted((k.lower(), v) for k, v in rec.headers if k.lower().startswith("x-forwarded-"))
        self.assertEqual(got, [("x-forwarded-for", "127.0.0.1"), ("x-forwarded-host", host),
                               ("x-forwarded-port", str(self.gw.port(listener))),
                               ("x-forwarded-proto", listener)], rec.headers)

    def echo_check(self, c):
        c.send_text("hello")
        self.assertEqual(c.recv_message(), (OP_TEXT, b"hello"))
        c.send_binary(b"\x00\x01\xfe\xff" * 100)
        self.assertEqual(c.recv_message(), (OP_BINARY, b"\x00\x01\xfe\xff" * 100))


class WebSocketTest(WsTestCase):
    def test_echo_on_a_fresh_connection_sets_the_cookie_and_forwards_headers(self):
        for listener in LISTENERS:
            with self.subTest(listener=listener):
                path = "/ws?fresh=" + listener
                c = self.ws(listener, path, host_header="app.example")
                self.assertUpgraded(c)
                self.assertTrue(srv_cookie(c.response),
                                "the 101 of a session without a cookie carries Set-Cookie SRV: %r"
                                % c.response)
                rec = self.server_record(c, path)
                self.assertForwarded(rec, listener, "app.example")
                self.assertIn("websocket", (rec.header("upgrade") or "").lower(), rec.headers)
                self.echo_check(c)
                # A fragmented message and a ping in its middle (RFC 6455 §5.4).
                c.send_frame(OP_TEXT, "frag-", fin=False)
                c.ping(b"in-between")
                c.send_frame(OP_CONT, "mented", fin=True)
                self.assertEqual(c.recv_message(), (OP_TEXT, b"frag-mented"))
                self.assertEqual(c.recv_message(skip_pongs=False), (OP_PONG, b"in-between"))
                # Many small messages, in order.
                for i in range(300):
                    c.send_text("m%d" % i)
                for i in range(300):
                    self.assertEqual(c.recv_message(), (OP_TEXT, b"m%d" % i))
                self.assertEqual(rec.ws.unmasked, 0, "client frames must reach the server masked")

    def test_spoofed_forwarded_headers_are_replaced(self):
        # trusted_proxies is empty: the client's own X-Forwarded-* go.
        spoofed = [("X-Forwarded-For", "1.2.3.4"), ("X-Forwarded-Proto", "gopher"),
                   ("X-Forwarded-Host", "evil.example"), ("X-Forwarded-Port", "1"),
                   ("x-forwarded-for", "5.6.7.8")]
        for listener in LISTENERS:
            with self.subTest(listener=listener):
                path = "/ws?spoof=" + listener
                c = self.ws(listener, path, headers=spoofed, host_header="app.example")
                self.assertUpgraded(c)
                self.assertForwarded(self.server_record(c, path), listener, "app.example")
                self.echo_check(c)

    def test_a_reused_cookie_goes_to_its_server(self):
        cookies = self.sticky_cookies(self.gw, "http")
        for listener in LISTENERS:
            for target in ("s1", "s2", "s2", "s1"):
                with self.subTest(listener=listener, target=target):
                    path = "/ws?to=%s&l=%s&n=%d" % (target, listener, len(self.by_name[target].requests))
                    c = self.ws(listener, path, headers=[("Cookie", "SRV=%s; app=7" % cookies[target])])
                    self.assertUpgraded(c)
                    self.assertEqual(c.response.header("x-server"), target,
                                     "the upgrade did not follow its cookie: %r" % c.response)
                    self.assertIsNone(srv_cookie(c.response), "a valid cookie was set again: %r"
                                      % c.response)
                    rec = self.server_record(c, path)
                    self.assertEqual(rec.cookies(), [("app", "7")],
                                     "insert mode: the server never sees SRV: %r" % rec.headers)
                    self.echo_check(c)
                    c.close(1000)

    def test_large_binary_messages_both_ways(self):
        for listener in LISTENERS:
            with self.subTest(listener=listener):
                c = self.ws(listener, timeout=60)
                self.assertUpgraded(c)
                data = hashlib.sha256(listener.encode()).digest() * (8 * MiB // 32)
                c.send_binary(data, drain=True)     # reads the echo while it sends
                op, (n, digest) = c.recv_message(timeout=60, hash_only=True)
                self.assertEqual((op, n, digest), (OP_BINARY, len(data), hashlib.sha256(data).hexdigest()),
                                 "an 8 MiB message came back altered")
                c.send_text("!send %d" % (8 * MiB))
                op, (n, digest) = c.recv_message(timeout=60, hash_only=True)
                self.assertEqual((op, n, digest), (OP_BINARY, 8 * MiB, download_sha256(8 * MiB)),
                                 "an 8 MiB message from the server came back altered")
                self.echo_check(c)

    def test_tunnel_closes_when_the_server_closes(self):
        for listener in LISTENERS:
            for how in ("!close", "!drop"):
                with self.subTest(listener=listener, how=how):
                    c = self.ws(listener, "/ws?srv=%s&l=%s" % (how[1:], listener))
                    self.assertUpgraded(c)
                    self.echo_check(c)
                    c.send_text(how)
                    if how == "!close":
                        fin, op, payload, _ = c.recv_frame(timeout=10)
                        self.assertEqual((op, payload), (OP_CLOSE, b"\x03\xe8server bye"),
                                         "the server's close frame must reach the client")
                    t0 = time.monotonic()
                    self.assertTrue(c.wait_eof(10), "the tunnel stayed open after the server "
                                    "closed its side (%s)" % how)
                    self.assertLess(time.monotonic() - t0, 10)
                    # A tunnel that ended is a complete exchange: 101, "ok".
                    target = '"GET /ws?srv=%s&l=%s ' % (how[1:], listener)
                    lines = lambda: [l for l in self.gw.log_lines() if target in l]  # noqa: E731
                    self.assertTrue(wait_until(lines), "no log line for " + target)
                    self.assertRegex(lines()[-1], r" 101 .* ok$")

    def test_tunnel_closes_when_the_client_closes(self):
        for listener in LISTENERS:
            with self.subTest(listener=listener, how="close frame"):
                c = self.ws(listener, "/ws?cli=close&l=" + listener)
                self.assertUpgraded(c)
                rec = self.server_record(c, "/ws?cli=close&l=" + listener)
                self.echo_check(c)
                c.close(1001, b"going")
                fin, op, payload, _ = c.recv_frame(timeout=10)
                self.assertEqual((op, payload), (OP_CLOSE, b"\x03\xe9going"))
                self.assertTrue(rec.ws.done.wait(10))
                self.assertEqual((rec.ws.end, rec.ws.close_code), ("close", 1001))
                self.assertTrue(c.wait_eof(10), "the tunnel stayed open after both close frames")
            with self.subTest(listener=listener, how="TCP close"):
                path = "/ws?cli=abort&l=" + listener
                c = self.ws(listener, path)
                self.assertUpgraded(c)
                rec = self.server_record(c, path)
                self.echo_check(c)
                c.abort()
                self.assertTrue(rec.ws.done.wait(10), "the server's side of the tunnel stayed "
                                "open after the client went away")
                self.assertEqual(rec.ws.end, "eof")

    def test_close_handshake_completes_after_the_clients_fin(self):
        # A client that sends its close frame and then its FIN at once: the
        # half-close reaches the server, and the server's close frame still
        # reaches the client before the tunnel ends (issue 16).
        for listener in LISTENERS:
            with self.subTest(listener=listener):
                path = "/ws?cli=fin&l=" + listener
                c = self.ws(listener, path)
                self.assertUpgraded(c)
                rec = self.server_record(c, path)
                self.echo_check(c)
                c.close(1000, b"bye")
                # FIN on the TCP connection under the (TLS) socket, which stays
                # readable: shutdown through a duplicate of its descriptor.
                dup = socket.socket(fileno=os.dup(c.conn.sock.fileno()))
                dup.shutdown(socket.SHUT_WR)
                dup.close()
                fin, op, payload, _ = c.recv_frame(timeout=10)
                self.assertEqual((op, payload), (OP_CLOSE, b"\x03\xe8bye"),
                                 "the server's close frame was lost after the client's FIN")
                self.assertTrue(rec.ws.done.wait(10))
                self.assertEqual((rec.ws.end, rec.ws.close_code), ("close", 1000))
                self.assertTrue(c.wait_eof(10), "the tunnel stayed open after both sides closed")

    def test_not_an_upgrade_is_a_plain_request(self):
        # The same path without the upgrade headers is an ordinary request:
        # the server's 426 comes back as is (and the connection is still HTTP).
        r = self.fresh_get(self.gw, "http", "/ws")
        self.assertStatus(r, 426, self.gw)


class WebSocketIdleTest(WsTestCase):
    timeouts = {"client": "1500ms"}

    def test_an_idle_tunnel_is_closed_and_an_active_one_is_not(self):
        for listener in LISTENERS:
            with self.subTest(listener=listener):
                path = "/ws?idle=" + listener
                c = self.ws(listener, path)
                self.assertUpgraded(c)
                rec = self.server_record(c, path)
                # Active for 4.5 s (three idle timeouts): a ping every 300 ms.
                t_end = time.monotonic() + 4.5
                while time.monotonic() < t_end:
                    c.ping(b"alive")
                    try:
                        self.assertEqual(c.recv_message(timeout=5, skip_pongs=False), (OP_PONG, b"alive"))
                    except WsClosed:
                        self.fail("an active tunnel was closed (timeouts.client is 1500ms, "
                                  "traffic every 300ms)")
                    time.sleep(0.3)
                self.echo_check(c)
                t0 = time.monotonic()
                self.assertTrue(c.wait_eof(10), "an idle tunnel was not closed")
                idle = time.monotonic() - t0
                self.assertGreater(idle, 1.0, "closed after %.2fs, before the 1500ms timeout" % idle)
                self.assertLess(idle, 4.0, "closed only %.2fs after the last byte (timeouts.client "
                                "1500ms)" % idle)
                self.assertTrue(rec.ws.done.wait(10), "the server's side stayed open")


if __name__ == "__main__":
    main()
