"""Errors the gateway answers itself, request smuggling, limits, the CLI (docs/behaviour.md#signals, docs/behaviour.md#request-path).

Smuggling shapes are sent as raw bytes to the plain listener; each must get a
400 and the fake server must not have seen any request (a good sentinel
request sent afterwards is the only thing it records).
"""

import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from harness import (GatewayTestCase, LOCAL, RawConnection, basic_config, curl, make_cert,  # noqa: E402
                     main, parse_responses, raw_request, run_gateway, status_of, to_yaml)

KiB = 1024

LIMITS = {"max_request_line": "1KiB", "max_headers": 20, "max_header_bytes": "4KiB",
          "max_body": "1KiB"}


class GatewayAnswersTest(GatewayTestCase):
    """One fake server behind both listeners, small limits."""

    def setUp(self):
        self.s1 = self.servers("s1")
        self.gw = self.gateway(basic_config([self.s1], limits=LIMITS,
                                            timeouts={"http_request": "1s"}))
        self.sentinels = 0

    def raw(self, data, timeout=5.0):
        return raw_request(LOCAL, self.gw.port("http"), data, timeout=timeout)

    def exchange(self, data, close_within=3.0):
        """Sends data on a new connection; returns (bytes received, closed) where
        closed tells whether the gateway closed the connection within close_within s."""
        with RawConnection(LOCAL, self.gw.port("http"), timeout=10) as c:
            try:
                c.send(data)
            except (BrokenPipeError, ConnectionResetError):
                pass
            closed = c.wait_closed(close_within)
            return bytes(c.buf), closed

    def assert_rejected(self, data, status, what):
        """data gets `status`, the connection closes, the request never reaches the server."""
        self.s1.clear()
        out, closed = self.exchange(data)
        got = status_of(out)
        self.assertEqual(got, status, "%s: expected %d, got %r" % (what, status, out[:400]))
        resp = parse_responses(out)
        self.assertTrue(resp and resp[0].body, "%s: no body naming the reason: %r" % (what, out[:400]))
        self.assertEqual(len(resp), 1, "%s: more than one response: %r" % (what, out[:600]))
        self.assertTrue(closed, "%s: connection left open after %d" % (what, status))
        self.assert_server_saw_nothing(what)

    def assert_server_saw_nothing(self, what):
        # a good request afterwards; once it is recorded, nothing else may be
        self.sentinels += 1
        path = "/?sentinel=%d" % self.sentinels
        out = self.raw(b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path.encode())
        self.assertEqual(status_of(out), 200, "gateway broken after %s: %r" % (what, out[:300]))
        self.assertIsNotNone(self.s1.wait_for(lambda r: r.target == path, timeout=5))
        time.sleep(0.05)
        seen = [r for r in self.s1.requests if r.target != path]
        self.assertEqual(seen, [], "%s reached the server: %r" % (what, [r.raw_head for r in seen]))

    # ------------------------------------------------------------- smuggling
    def test_ambiguous_framing_is_400_and_never_forwarded(self):
        h = b"POST /upload HTTP/1.1\r\nHost: x\r\n"
        shapes = {
            "CL+TE": h + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "TE+CL": h + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
            "two different CL": h + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
            "CL list of different values": h + b"Content-Length: 5, 6\r\n\r\nhello!",
            "CL +5": h + b"Content-Length: +5\r\n\r\nhello",
            "CL -5": h + b"Content-Length: -5\r\n\r\nhello",
            "CL '5 5'": h + b"Content-Length: 5 5\r\n\r\nhello",
            "CL 0x5": h + b"Content-Length: 0x5\r\n\r\nhello",
            "CL 5a": h + b"Content-Length: 5a\r\n\r\nhello",
            "TE chunked, identity": h + b"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
            "TE identity": h + b"Transfer-Encoding: identity\r\n\r\n",
            "TE chunked then identity header": h + b"Transfer-Encoding: chunked\r\n"
                                               b"Transfer-Encoding: identity\r\n\r\n0\r\n\r\n",
            "TE on HTTP/1.0": b"POST /upload HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                              b"5\r\nhello\r\n0\r\n\r\n",
            "space before colon": b"GET / HTTP/1.1\r\nHost: x\r\nX-Foo : bar\r\n\r\n",
            "space before colon in CL": h + b"Content-Length : 5\r\n\r\nhello",
            "space before colon in TE": h + b"Content-Length: 5\r\nTransfer-Encoding : chunked\r\n\r\n"
                                            b"0\r\n\r\n",
            "obs-fold": b"GET / HTTP/1.1\r\nHost: x\r\nX-Foo: a\r\n b\r\n\r\n",
            "obs-fold with tab": b"GET / HTTP/1.1\r\nHost: x\r\nX-Foo: a\r\n\tb\r\n\r\n",
            "NUL in a value": b"GET / HTTP/1.1\r\nHost: x\r\nX-Foo: a\x00b\r\n\r\n",
            "bare CR in a value": b"GET / HTTP/1.1\r\nHost: x\r\nX-Foo: a\rb\r\n\r\n",
            "control byte 0x01 in a value": b"GET / HTTP/1.1\r\nHost: x\r\nX-Foo: a\x01b\r\n\r\n",
            "DEL in a value": b"GET / HTTP/1.1\r\nHost: x\r\nX-Foo: a\x7fb\r\n\r\n",
            "no Host on HTTP/1.1": b"GET / HTTP/1.1\r\nX-Foo: bar\r\n\r\n",
            "quote in Host": b'GET / HTTP/1.1\r\nHost: a"b\r\n\r\n',
            "space in Host": b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
            "bad authority in absolute form": b"GET http://a<b/ HTTP/1.1\r\nHost: x\r\n\r\n",
        }
        for what, data in shapes.items():
            with self.subTest(shape=what):
                self.assert_rejected(data, 400, what)

    def test_identical_duplicate_content_length_is_not_smuggling(self):
        # "identical duplicates may count as one": either accepted whole or 400, never a split
        self.s1.clear()
        out = self.raw(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n"
                       b"Connection: close\r\n\r\nhello")
        st = status_of(out)
        self.assertIn(st, (200, 400), out[:300])
        if st == 200:
            self.assertEqual(parse_responses(out)[0].json()["length"], 5)

    def test_malformed_chunk_is_not_forwarded_as_a_complete_request(self):
        h = b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        shapes = {
            "chunk size zz": h + b"zz\r\nhello\r\n0\r\n\r\n",
            "chunk size after a good chunk": h + b"5\r\nhello\r\nzz\r\nhello\r\n0\r\n\r\n",
            "chunk size overflow": h + b"1" + b"0" * 32 + b"\r\nhello\r\n0\r\n\r\n",
            "chunk size -1": h + b"-1\r\nhello\r\n0\r\n\r\n",
            "chunk size 0x5": h + b"0x5\r\nhello\r\n0\r\n\r\n",
            "chunk data not followed by CRLF": h + b"5\r\nhelloXX0\r\n\r\n",
        }
        for what, data in shapes.items():
            with self.subTest(shape=what):
                self.s1.clear()
                out, closed = self.exchange(data)
                st = status_of(out)
                self.assertIn(st, (400, None),
                              "%s: expected 400 or a closed connection, got %r" % (what, out[:300]))
                if st is None:
                    self.assertEqual(out, b"", "%s: garbage answer %r" % (what, out[:300]))
                self.assertTrue(closed, "%s: connection left open" % what)
                time.sleep(0.2)
                done = [r for r in self.s1.requests if r.complete]
                self.assertEqual(done, [], "%s: the server got a complete request" % what)

    # ---------------------------------------------------------------- limits
    def test_request_line_too_long_is_414(self):
        ok = b"GET /" + b"a" * 900 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        self.assertEqual(status_of(self.raw(ok)), 200, "a 900-byte target is within 1KiB")
        self.assert_rejected(b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414,
                             "request line over max_request_line")

    def test_too_many_headers_is_431(self):
        def req(n):
            return (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                    + b"".join(b"X-H%d: v\r\n" % i for i in range(n)) + b"\r\n")
        self.assertEqual(status_of(self.raw(req(10))), 200, "12 headers are within max_headers 20")
        self.assert_rejected(req(30), 431, "32 headers")

    def test_header_block_too_large_is_431(self):
        def req(n):
            return b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: " + b"b" * n + b"\r\n\r\n"
        self.assertEqual(status_of(self.raw(req(2000))), 200, "2000 bytes are within 4KiB")
        self.assert_rejected(req(6000), 431, "6000-byte header over max_header_bytes 4KiB")
        many = (b"GET / HTTP/1.1\r\nHost: x\r\n"
                + b"".join(b"X-M%d: %s\r\n" % (i, b"m" * 400) for i in range(15)) + b"\r\n")
        self.assert_rejected(many, 431, "15 headers of 400 bytes over max_header_bytes 4KiB")

    def test_body_over_max_body_is_413(self):
        ok = b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n" + b"o" * 1000
        self.assertEqual(status_of(self.raw(ok)), 200, "1000 bytes are within max_body 1KiB")
        self.assert_rejected(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 2048\r\n\r\n" + b"x" * 2048,
                             413, "Content-Length 2048 over max_body 1KiB")

    def test_chunked_body_over_max_body_is_refused(self):
        self.s1.clear()
        body = b"".join(b"100\r\n" + b"c" * 256 + b"\r\n" for _ in range(8)) + b"0\r\n\r\n"
        out, closed = self.exchange(b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                                    + body)
        st = status_of(out)
        self.assertIn(st, (413, None), "2 KiB chunked over max_body 1KiB: %r" % out[:300])
        self.assertTrue(closed, "connection left open")
        time.sleep(0.2)
        done = [r for r in self.s1.requests if r.complete]
        self.assertEqual(done, [], "the server got the whole oversized body")

    def test_slow_request_head_is_408(self):
        with RawConnection(LOCAL, self.gw.port("http"), timeout=10) as c:
            start = time.monotonic()
            c.send(b"GET / HTTP/1.1\r\nHost: x\r\n")   # the head never ends
            closed = c.wait_closed(6)
            elapsed = time.monotonic() - start
            self.assertTrue(closed, "connection still open 6 s after a 1 s http_request timeout")
            self.assertEqual(status_of(bytes(c.buf)), 408, bytes(c.buf[:300]))
            self.assertGreater(elapsed, 0.8, "408 before the timeout ran out")
            self.assertLess(elapsed, 4.0)
        self.assertEqual(self.s1.requests, [])

    def test_slow_second_request_on_keepalive_is_408(self):
        with RawConnection(LOCAL, self.gw.port("http"), timeout=10) as c:
            c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertEqual(c.read_response().status, 200)
            time.sleep(1.5)   # idle: no timer for the head yet (keepalive is 60 s)
            c.send(b"GET / HTTP/1.1\r\n")
            start = time.monotonic()
            self.assertTrue(c.wait_closed(6))
            self.assertGreater(time.monotonic() - start, 0.8)
            self.assertEqual(status_of(bytes(c.buf)), 408, bytes(c.buf[:300]))


class NoServerTest(GatewayTestCase):
    def test_503_when_every_server_is_down(self):
        servers = self.servers("s1", "s2", "s3")
        gw = self.gateway(basic_config(servers))
        for s in servers:
            s.stop()
        for listener in ("https", "http"):
            with self.subTest(listener=listener):
                r = curl(gw.url(listener, "/"))
                self.assertStatus(r, 503, gw)
                self.assertTrue(0 < len(r.body) < 4096, "expected a short body: %r" % r.body)
                self.assertIsNone(r.header("x-server"))
        # and when they come back the gateway uses them again
        for s in servers:
            s.start()
        r = curl(gw.url("http", "/"))
        self.assertStatus(r, 200, gw)


# ------------------------------------------------------------------------ CLI
GOOD = """\
workers: 1
listeners:
  - name: https
    bind: "127.0.0.1:{port}"
    tls:
      certificates: "{certs}"
    backend: app
backends:
  - name: app
    servers:
      - {{name: s1, address: "127.0.0.1:9"}}
"""


class CliTest(GatewayTestCase):
    def setUp(self):
        self.dir = self.temp_dir("cli-")
        self.certs = make_cert()

    def write(self, name, text):
        with open(os.path.join(self.dir, name), "w") as f:
            f.write(text)
        return name

    def good(self):
        return GOOD.format(port=1, certs=self.certs)

    def test_check_accepts_a_good_config(self):
        self.write("good.yaml", self.good())
        p = run_gateway(["--check", "--config", "good.yaml"], cwd=self.dir)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_check_reports_an_unknown_key_with_file_line_and_column(self):
        lines = self.good().split("\n")
        lines.insert(4, "    bogus_key: 1")   # line 5, inside listener `https`
        self.write("bad.yaml", "\n".join(lines))
        p = run_gateway(["--check", "--config", "bad.yaml"], cwd=self.dir)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertRegex(p.stderr, r"(?m)^bad\.yaml:5:\d+: ", "want FILE:LINE:COL: as given")
        self.assertRegex(p.stderr, r"(?m)^bad\.yaml:5:5: ", "the key starts at column 5")
        self.assertIn("bogus_key", p.stderr)

    def test_check_reports_every_error(self):
        lines = self.good().split("\n")
        lines.insert(9, "    unknown_backend_key: x")   # line 10, inside backend `app`
        lines.insert(1, "nonsense_top_level: 1")          # line 2; the other moves to 11
        self.write("two.yaml", "\n".join(lines))
        path = os.path.join(self.dir, "two.yaml")
        p = run_gateway(["--check", "--config", path])
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertRegex(p.stderr, r"(?m)^%s:2:1: " % re.escape(path))
        self.assertRegex(p.stderr, r"(?m)^%s:11:5: " % re.escape(path))

    def test_check_reports_a_bad_value(self):
        text = self.good().replace("workers: 1", "workers: -3")
        self.write("val.yaml", text)
        p = run_gateway(["--check", "--config", "val.yaml"], cwd=self.dir)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertRegex(p.stderr, r"(?m)^val\.yaml:1:\d+: ")

    def test_running_with_a_bad_config_fails(self):
        lines = self.good().split("\n")
        lines.insert(4, "    bogus_key: 1")
        self.write("bad.yaml", "\n".join(lines))
        p = run_gateway(["--config", "bad.yaml"], cwd=self.dir, timeout=10)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("bad.yaml:5:", p.stderr)

    def test_version_names_the_libraries(self):
        p = run_gateway(["--version"])
        self.assertEqual(p.returncode, 0, p.stderr)
        out = (p.stdout + p.stderr).lower()
        for lib in ("openssl", "nghttp2", "boost", "hiredis"):
            self.assertIn(lib, out, "--version does not mention %s: %r" % (lib, p.stdout))
        self.assertRegex(out, r"openssl\D*3\.\d+", "no OpenSSL version number")
        self.assertRegex(out, r"nghttp2\D*1\.\d+")
        self.assertRegex(out, r"boost\D*1[._]81")


if __name__ == "__main__":
    main()
