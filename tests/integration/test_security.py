"""Defects found by probing as an attacker and as a broken server would (issue 10).

- A server that writes past its response (a HEAD answered with a body, bytes
  past Content-Length a moment later) must never have those bytes read as the
  answer to another client's request on the pooled connection.
- Chunked framing from a client (endless chunk extension, endless leading
  zeros, endless trailers, a 2^64-1 size) is refused at once with memory
  bounded; the same caps hold for a server's chunked response.
"""

import os
import socket
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from harness import (GatewayTestCase, LOCAL, RawConnection, basic_config, main,  # noqa: E402
                     parse_responses, status_of)
from scripted_server import ScriptedServer, ok  # noqa: E402

MiB = 1024 * 1024


class ResponseMixupTest(GatewayTestCase):
    """One worker, one server: every request shares the worker's pool."""

    def start(self, script):
        srv = ScriptedServer(script)
        self.addCleanup(srv.stop)
        self.gw = self.gateway(basic_config([{"name": "s1", "address": "127.0.0.1:%d" % srv.port}],
                                            tls=False, workers=1))
        return srv

    def get(self, path, method="GET"):
        with RawConnection(LOCAL, self.gw.port("http"), timeout=10) as c:
            c.send(b"%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % (method.encode(), path.encode()))
            return c.read_response(head_only=(method == "HEAD"))

    def assert_own_answers(self, tag, n=6):
        for i in range(n):
            rid = "%s-%d" % (tag, i)
            r = self.get("/?id=" + rid)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.header("x-rid"), rid, "request %s got another's response: %r" % (rid, r))
            self.assertEqual(r.body, b"for " + rid.encode())

    def test_head_answered_with_a_body_that_looks_like_a_response(self):
        for delay in (None, 0.05):   # in the same write, and a moment later
            def script(req, delay=delay):
                if req.method == "HEAD":
                    head = b"HTTP/1.1 200 OK\r\nX-Rid: %s\r\nContent-Length: 35\r\n\r\n" % req.rid.encode()
                    evil = ok("evil", b"another user's page")
                    return [head + evil] if delay is None else [head, delay, evil]
                return [ok(req.rid)]
            self.start(script)
            with self.subTest(delay=delay):
                for round_ in range(3):
                    r = self.get("/?id=head%d" % round_, "HEAD")
                    self.assertEqual(r.status, 200)
                    time.sleep(0.3)
                    self.assert_own_answers("d%s-r%d" % (delay, round_))
            self.gw.stop()

    def test_bytes_past_content_length_arriving_later(self):
        def script(req):
            if req.rid.startswith("first"):
                return [ok(req.rid), 0.05, ok("evil", b"another user's page")]
            return [ok(req.rid)]
        self.start(script)
        for round_ in range(3):
            r = self.get("/?id=first%d" % round_)
            self.assertEqual(r.header("x-rid"), "first%d" % round_)
            time.sleep(0.3)
            self.assert_own_answers("r%d" % round_)

    def test_extra_bytes_in_the_same_read_close_the_connection(self):
        def script(req):
            if req.rid.startswith("first"):
                return [ok(req.rid) + ok("evil", b"another user's page")]
            return [ok(req.rid)]
        self.start(script)
        for round_ in range(3):
            r = self.get("/?id=first%d" % round_)
            self.assertEqual(r.header("x-rid"), "first%d" % round_)
            self.assert_own_answers("r%d" % round_)


class ClientFramingTest(GatewayTestCase):
    def setUp(self):
        self.s1 = self.servers("s1")
        self.gw = self.gateway(basic_config([self.s1], tls=False, limits={"max_header_bytes": "32KiB"},
                                            timeouts={"client": "20s"}))
        self.head = b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"

    def flood(self, prefix, filler, budget=32 * MiB):
        """Sends prefix, then filler repeatedly (up to budget bytes) while the
        gateway keeps reading; returns (status, seconds until the answer, RSS growth KiB)."""
        # warm up the worker's buffers first, so growth is the flood's alone
        self.assertEqual(self.fresh_get(self.gw, "http").status, 200)
        rss0 = self.gw.rss_kib()
        start = time.monotonic()
        with RawConnection(LOCAL, self.gw.port("http"), timeout=10) as c:
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 256 * 1024)
            c.send(prefix)
            sent = 0
            c.sock.settimeout(0.5)
            answered_at = None
            while sent < budget:
                try:
                    c.sock.sendall(filler)
                except (BrokenPipeError, ConnectionResetError, socket.timeout, OSError):
                    break
                sent += len(filler)
                if answered_at is None and c._recv(0.0001):
                    answered_at = time.monotonic()
            c.wait_closed(5)
            if answered_at is None and c.buf:
                answered_at = time.monotonic()
            growth = self.gw.rss_kib() - rss0
            return status_of(bytes(c.buf)), (answered_at or time.monotonic()) - start, growth, bytes(c.buf)

    def check(self, prefix, filler, status):
        st, took, growth, out = self.flood(prefix, filler)
        self.assertEqual(st, status, out[:300])
        self.assertLess(took, 3.0, "answered after %.1fs" % took)
        self.assertLess(growth, 16 * 1024, "gateway RSS grew by %d KiB" % growth)
        self.assertEqual([r for r in self.s1.requests if r.complete and r.target == "/upload"], [])

    def test_endless_chunk_extension_is_400(self):
        self.check(self.head + b"5;ext=", b"a" * 65536, 400)

    def test_endless_leading_zeros_are_400(self):
        self.check(self.head, b"0" * 65536, 400)

    def test_endless_trailers_are_431(self):
        self.check(self.head + b"5\r\nhello\r\n0\r\n", b"X-Trailer: " + b"v" * 50 + b"\r\n", 431)

    def test_chunk_size_2_64_minus_1_is_400_at_once(self):
        start = time.monotonic()
        with RawConnection(LOCAL, self.gw.port("http"), timeout=10) as c:
            c.send(self.head + b"ffffffffffffffff\r\nabc")
            r = c.read_response(timeout=3)
            self.assertEqual(r.status, 400, r)
            self.assertTrue(c.wait_closed(3))
        self.assertLess(time.monotonic() - start, 2.0)

    def test_extensions_and_trailers_within_the_caps_pass(self):
        with RawConnection(LOCAL, self.gw.port("http"), timeout=10) as c:
            c.send(self.head + b"5;name=" + b"v" * 3000 + b"\r\nhello\r\n0\r\nX-T: " + b"t" * 20000
                   + b"\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
            r = c.read_response(timeout=5)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["length"], 5)
            self.assertEqual(c.read_response(timeout=5).status, 200)


class ServerFramingTest(GatewayTestCase):
    """A server's chunked response gets the caps a client's body gets."""

    def start(self, script):
        srv = ScriptedServer(script)
        self.addCleanup(srv.stop)
        return self.gateway(basic_config([{"name": "s1", "address": "127.0.0.1:%d" % srv.port}],
                                         tls=False, workers=1))

    def fetch(self, gw):
        start = time.monotonic()
        with RawConnection(LOCAL, gw.port("http"), timeout=15) as c:
            c.send(b"GET /?id=x HTTP/1.1\r\nHost: x\r\n\r\n")
            c.wait_closed(12)
            return bytes(c.buf), time.monotonic() - start

    def assert_refused_at_once(self, gw):
        out, took = self.fetch(gw)
        self.assertLess(took, 3.0, "the bad framing was waited on: %r" % out[:200])
        resp = parse_responses(out)
        complete_200 = [r for r in resp if r.status == 200]
        self.assertEqual(complete_200, [], "a broken chunked response was passed on as complete")
        if resp:
            self.assertEqual(resp[0].status, 502)

    def test_huge_chunk_size_from_a_server(self):
        gw = self.start(lambda req: [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                     b"ffffffffffffffff\r\nabc", 8.0])
        self.assert_refused_at_once(gw)

    def test_endless_chunk_extension_from_a_server(self):
        gw = self.start(lambda req: [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x="
                                     + b"a" * 200000, 8.0])
        self.assert_refused_at_once(gw)


class PeerParityTest(GatewayTestCase):
    """Answers that fell short of HAProxy's and nginx's."""

    def scripted(self, script):
        srv = ScriptedServer(script)
        self.addCleanup(srv.stop)
        return self.gateway(basic_config([{"name": "s1", "address": "127.0.0.1:%d" % srv.port}],
                                         tls=False, workers=1))

    def test_fragment_or_raw_byte_in_the_target_is_400(self):
        s1 = self.servers("s1")
        gw = self.gateway(basic_config([s1], tls=False))
        for target in (b"/a#frag", b"/caf\xc3\xa9", b"/?q=\x80"):
            with self.subTest(target=target):
                with RawConnection(LOCAL, gw.port("http"), timeout=10) as c:
                    c.send(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % target)
                    self.assertTrue(c.wait_closed(5))
                    self.assertEqual(status_of(bytes(c.buf)), 400, bytes(c.buf[:200]))
        self.assertEqual(s1.requests, [])

    def test_identical_content_lengths_are_forwarded_as_one(self):
        s1 = self.servers("s1")
        gw = self.gateway(basic_config([s1], tls=False))
        with RawConnection(LOCAL, gw.port("http"), timeout=10) as c:
            c.send(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello")
            r = c.read_response()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["length"], 5)
        rec = s1.requests[-1]
        self.assertEqual([v for n, v in rec.headers if n.lower() == "content-length"], ["5"])

    def test_204_and_304_with_a_body_pass_neither_body_nor_204_length(self):
        def script(req):
            if req.rid == "204":
                return [b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\nX-Rid: 204\r\n\r\nhello"]
            if req.rid == "304":
                return [b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\nX-Rid: 304\r\n\r\nhello"]
            return [ok(req.rid)]
        gw = self.scripted(script)
        with RawConnection(LOCAL, gw.port("http"), timeout=10) as c:
            for rid in ("204", "304"):
                c.send(b"GET /?id=%s HTTP/1.1\r\nHost: x\r\n\r\n" % rid.encode())
                time.sleep(0.2)
                c.send(b"GET /?id=after%s HTTP/1.1\r\nHost: x\r\n\r\n" % rid.encode())
                r = c.read_response(head_only=True)
                self.assertEqual(r.status, int(rid))
                if rid == "204":
                    self.assertIsNone(r.header("content-length"), r)
                nxt = c.read_response()
                self.assertEqual((nxt.status, nxt.header("x-rid")), (200, "after" + rid),
                                 "the %s's body leaked into the next response: %r" % (rid, nxt))

    def test_a_body_ending_with_the_servers_close_is_relayed_whole(self):
        # No Content-Length, no chunked: the body runs until the server
        # closes (RFC 9112 §6.3). It reaches an HTTP/1.1 client whole, in
        # chunked framing, and its connection is never pooled: the next
        # request goes to a fresh one. An HTTP/1.0 "keep-alive" response
        # with a length is pooled like any other.
        body = bytes(range(256)) * 300   # 76,800 bytes: several relay buffers
        def script(req):
            if req.rid == "close":
                return [b"HTTP/1.1 200 OK\r\nX-Rid: close\r\n\r\n", body[:30000], 0.05,
                        body[30000:], None]
            if req.rid == "http10":
                return [b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nX-Rid: http10\r\n"
                        b"Content-Length: 2\r\n\r\nok"]
            return [ok(req.rid)]
        srv = ScriptedServer(script)
        self.addCleanup(srv.stop)
        gw = self.gateway(basic_config([{"name": "s1", "address": "127.0.0.1:%d" % srv.port}],
                                       tls=False, workers=1))
        with RawConnection(LOCAL, gw.port("http"), timeout=10) as c:
            for rid in ("close", "after", "http10", "after10"):
                c.send(b"GET /?id=%s HTTP/1.1\r\nHost: x\r\n\r\n" % rid.encode())
                r = c.read_response()
                self.assertEqual((r.status, r.header("x-rid")), (200, rid), r)
                if rid == "close":
                    self.assertEqual(r.header("transfer-encoding"), "chunked", r)
                    self.assertTrue(bytes(r.body) == body, "the body arrived altered")
        # after: a new server connection (the close-delimited one ended);
        # after10: the HTTP/1.0 keep-alive connection, reused.
        self.assertEqual([q.index for q in srv.requests], [0, 0, 1, 2])

    def test_invalid_response_names_the_server_in_the_log_and_stderr(self):
        gw = self.scripted(lambda req: [b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n", None])
        for _ in range(5):
            with RawConnection(LOCAL, gw.port("http"), timeout=10) as c:
                c.send(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
                self.assertEqual(c.read_response().status, 502)
        lines = gw.wait_log_lines(5)
        self.assertEqual(len(lines), 5, lines)
        for line in lines:
            self.assertIn(" app/s1 ", line)
            self.assertIn(" 502 ", line)
            self.assertTrue(line.endswith(" bad-response"), line)
        warnings = [l for l in gw.stderr().splitlines() if "s1" in l and "502" in l]
        # one a second per worker: the burst gives one line, naming the reason
        self.assertEqual(len(warnings), 1, gw.stderr())
        self.assertIn("app/s1: invalid response head", warnings[0])
        self.assertIn("WARN", warnings[0].upper())
        metrics_free = [l for l in lines if " app/- " in l]
        self.assertEqual(metrics_free, [])


class StaleReplayCountTest(GatewayTestCase):
    def test_replay_after_a_dead_pooled_connection_is_counted(self):
        # The server takes a second request on a kept-alive connection and
        # closes it unanswered (as a server timing out keep-alive does): the
        # gateway replays on a fresh connection, free of the retries budget,
        # but the log's RETRIES and gateway_retries_total say so (issue 16).
        srv = ScriptedServer(lambda req: [None] if req.index == 1 else [ok(req.rid)])
        self.addCleanup(srv.stop)
        cfg = basic_config([{"name": "s1", "address": "127.0.0.1:%d" % srv.port}], tls=False,
                           workers=1, admin={"bind": "127.0.0.1:0"})
        cfg["backends"][0]["retries"] = 0
        gw = self.gateway(cfg)
        for rid in ("a", "b"):
            with RawConnection(LOCAL, gw.port("http"), timeout=10) as c:
                c.send(b"GET /?id=%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % rid.encode())
                r = c.read_response()
                self.assertEqual((r.status, r.header("x-rid")), (200, rid), r)
        lines = gw.wait_log_lines(2)
        retries = [int(l.split()[-5]) for l in lines]
        self.assertEqual(retries, [0, 1], lines)
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % gw.port("admin"), timeout=10) as m:
            metrics = m.read().decode()
        self.assertIn('gateway_retries_total{backend="app"} 1', metrics)


class TerminationTest(GatewayTestCase):
    """Responses cut short are not logged as plain successes."""

    def test_a_client_leaving_mid_download_is_client_close(self):
        s1 = self.servers("s1")
        gw = self.gateway(basic_config([s1], tls=False))
        with RawConnection(LOCAL, gw.port("http"), timeout=10, rcvbuf=4096) as c:
            c.send(b"GET /download?size=%d HTTP/1.1\r\nHost: x\r\n\r\n" % (64 * MiB))
            self.assertTrue(c.read_some(1000, timeout=5))
        line = gw.wait_log_lines(1, timeout=10)[-1]
        self.assertTrue(line.endswith(" client-close"), line)

    def test_a_slow_server_is_server_timeout_and_a_dead_one_connect_failed(self):
        s1 = self.servers("s1")
        cfg = basic_config([s1, {"name": "gone", "address": "127.0.0.1:1"}], tls=False, workers=1)
        cfg["backends"][0]["timeouts"] = {"server": "500ms"}
        cfg["backends"][0]["retries"] = 0
        gw = self.gateway(cfg)
        ends = set()
        for _ in range(4):   # round robin: both servers
            with RawConnection(LOCAL, gw.port("http"), timeout=10) as c:
                c.send(b"GET /slow?ms=2000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                ends.add(c.read_response().status)
        self.assertEqual(ends, {503, 504})
        terms = {l.split()[-1] for l in gw.wait_log_lines(4)}
        self.assertEqual(terms, {"server-timeout", "connect-failed"})


class LastFailureTest(GatewayTestCase):
    def test_a_get_whose_only_server_fails_gets_its_502_not_a_503(self):
        # Retried (a GET is safe), but no other server is left: the answer is
        # the failure itself, naming the server, not "no server available".
        srv = ScriptedServer(lambda req: [b"NOT HTTP AT ALL\r\n\r\n", None])
        self.addCleanup(srv.stop)
        gw = self.gateway(basic_config([{"name": "s1", "address": "127.0.0.1:%d" % srv.port}],
                                       tls=False, workers=1))
        with RawConnection(LOCAL, gw.port("http"), timeout=10) as c:
            c.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            self.assertEqual(c.read_response().status, 502)
        line = gw.wait_log_lines(1)[-1]
        self.assertIn(" app/s1 ", line)
        self.assertTrue(line.endswith(" bad-response"), line)


if __name__ == "__main__":
    main()
