"""HTTP/2 to clients (issue 5; docs/behaviour.md#request-path, docs/behaviour.md#persistence): the same routing, persistence and
headers as HTTP/1.1, stream for stream, and the known HTTP/2 attacks held off.

Clients: `curl --http2`, `nghttp`, and the frame-level clients of
support/h2client.py (python3-h2, and hand-built frames for floods). Every
client insists on h2 through ALPN: a gateway that does not offer h2 fails
these tests with "ALPN selected ..., not h2" (NotH2), "HTTP/1.1" from curl or
"HTTP/2 protocol was not selected" from nghttp.

Run against HAProxy instead of the gateway (to check the tests themselves):
SAG_TEST_STANDIN=haproxy (see support/standin.py).
"""

import collections
import hashlib
import json
import os
import shutil
import signal
import socket
import ssl
import struct
import sys
import tempfile
import threading
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from harness import (LOCAL, Http11Client, basic_config, connect_refused, curl,  # noqa: E402
                     download_sha256, json_log_time, main, srv_cookie, wait_until)
from h2client import (CONTINUATION, ERR, FLAG_END_HEADERS, FLAG_END_STREAM, HEADERS,  # noqa: E402
                      MAX_WINDOW, PING, RST_STREAM, SETTING, SETTINGS, H2Client, NotH2, RawH2,
                      frame, headers_block, nghttp)
from standin import ContractTestCase, h2_config  # noqa: E402

MiB = 1 << 20
BIG = 8 * MiB
# What a client that never reads may make the gateway hold. Under ASan+UBSan
# (tests/sanitize.sh sets SAG_SANITIZED=1) every allocation carries redzones,
# so the same bounded buffering shows as more RSS: the bound is scaled for
# that build only. Freed memory also waits in ASan's quarantine (256 MiB by
# default), which made RSS follow how many bytes went through (108 MiB after
# relaying 54 MiB) rather than what the gateway holds; the flood tests' gateway
# gets a small quarantine (FLOOD_GATEWAY_ENV).
NO_READ_RSS_BOUND_MIB = 96 if os.environ.get("SAG_SANITIZED") else 32
FLOOD_GATEWAY_ENV = ({"ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=16"}
                     if os.environ.get("SAG_SANITIZED") else None)


def marker():
    return uuid.uuid4().hex[:12]


def recorded(servers, pred):
    """[(server name, RecordedRequest)] over every server, for pred(request)."""
    return [(s.name, r) for s in servers for r in s.requests if pred(r)]


def body_bytes(size, seed=b"upload"):
    """size deterministic bytes unlike the download pattern (so an echo can't pass by accident)."""
    block = hashlib.sha256(seed).digest() * 2048           # 64 KiB
    reps = size // len(block) + 1
    return (block * reps)[:size]


class H2TestCase(ContractTestCase):
    """Two fake servers s1, s2 behind a gateway with `https` (ALPN h2,
    http/1.1) and `http` listeners; self.h2() opens an H2Client to `https`."""

    gateway_kw = {}
    gateway_env = None  # extra environment of the gateway process

    def setUp(self):
        self.s1, self.s2 = self.servers("s1", "s2")
        self.gw = self.gateway(h2_config([self.s1, self.s2], **self.gateway_kw), env=self.gateway_env)
        self.port = self.gw.port("https")
        self.authority = "127.0.0.1:%d" % self.port

    def h2(self, **kw):
        c = H2Client(LOCAL, self.port, **kw)
        self.addCleanup(c.close)
        return c

    def url(self, path):
        return self.gw.url("https", path)

    def assertH2(self, resp):
        self.assertEqual(resp.version, "HTTP/2", "curl --http2 did not get HTTP/2 (ALPN h2): %r" % resp)

    def assertStreamOK(self, st, status=200):
        self.assertTrue(st.done and st.reset is None and st.status == status,
                        "stream %d: want %d, got %r\n%s" % (st.sid, status, st, self.gw.describe()))


# ----------------------------------------------------------------- clients
class CurlAndNghttpTest(H2TestCase):
    def test_curl_large_bodies_both_ways_intact(self):
        for chunked in (0, 1):
            with self.subTest(download_chunked=chunked):
                r = curl(self.url("/download?size=%d&chunked=%d" % (BIG, chunked)), http="2",
                         timeout=60)
                self.assertH2(r)
                self.assertStatus(r, 200, self.gw)
                self.assertEqual(len(r.body), BIG)
                self.assertEqual(hashlib.sha256(r.body).hexdigest(), download_sha256(BIG),
                                 "downloaded bytes differ")
        data = body_bytes(BIG)
        r = curl(self.url("/upload"), http="2", method="POST", data=data, timeout=60)
        self.assertH2(r)
        self.assertStatus(r, 200, self.gw)
        self.assertEqual(r.json(), {"sha256": hashlib.sha256(data).hexdigest(), "length": BIG})

    def test_nghttp_large_bodies_both_ways_intact(self):
        n = nghttp(self.url("/download?size=%d" % BIG), timeout=60)
        self.assertEqual(n.status, 200, "nghttp: %r" % n)
        self.assertEqual(len(n.body), BIG)
        self.assertEqual(hashlib.sha256(n.body).hexdigest(), download_sha256(BIG))
        data = body_bytes(BIG, b"nghttp")
        with tempfile.NamedTemporaryFile(prefix="sag-h2-") as f:
            f.write(data)
            f.flush()
            n = nghttp(self.url("/upload"), data_file=f.name, timeout=60)
        self.assertEqual(n.status, 200, "nghttp POST: %r" % n)
        self.assertEqual(json.loads(n.body), {"sha256": hashlib.sha256(data).hexdigest(),
                                              "length": BIG})

    def test_set_cookie_on_h2_and_the_cookie_sticks(self):
        r = curl(self.url("/"), http="2")
        self.assertH2(r)
        value = srv_cookie(r)
        self.assertTrue(value, "no Set-Cookie SRV on an h2 response without a cookie: %r" % r)
        first = r.header("x-server")
        for i in range(4):
            r = curl(self.url("/?i=%d" % i), http="2", headers=[("Cookie", "SRV=" + value)])
            self.assertH2(r)
            self.assertEqual(r.header("x-server"), first, "cookie did not stick on h2: %r" % r)
            self.assertIsNone(srv_cookie(r), "a valid cookie was set again: %r" % r)
        n = nghttp(self.url("/"))
        self.assertEqual(n.status, 200, "nghttp: %r" % n)
        self.assertTrue([v for v in n.header_all("set-cookie") if v.startswith("SRV=")],
                        "no Set-Cookie SRV seen by nghttp: %r" % n)

    def test_nghttp_cookie_crumbs_route_by_the_sticky_one_and_are_joined(self):
        cookies = self.sticky_cookies(self.gw, "https")
        for target in ("s1", "s2", "s1", "s2"):
            with self.subTest(target=target):
                m = marker()
                n = nghttp(self.url("/headers?m=" + m),
                           headers=["cookie: a=1", "cookie: SRV=" + cookies[target], "cookie: b=2"])
                self.assertEqual(n.status, 200, "nghttp: %r" % n)
                self.assertEqual(n.header("x-server"), target, "routed by the wrong crumb: %r" % n)
                recs = recorded([self.s1, self.s2], lambda r: r.query.get("m") == m)
                self.assertEqual([name for name, _ in recs], [target])
                rec = recs[0][1]
                self.assertEqual(len(rec.header_all("cookie")), 1,
                                 "the server must see one joined Cookie header: %r" % rec.headers)
                self.assertEqual(rec.cookies(), [("a", "1"), ("b", "2")], rec.headers)


# -------------------------------------------------------- frame-level, normal
class H2BehaviourTest(H2TestCase):
    def test_cookie_crumbs_per_stream_on_one_connection(self):
        cookies = self.sticky_cookies(self.gw, "https")
        c = self.h2()
        plan = []
        for target in ("s1", "s2", "s2", "s1", "s1", "s2"):
            m = marker()
            crumbs = [("cookie", "SRV=" + cookies[target]), ("cookie", "x=9")]
            if len(plan) % 2:
                crumbs.reverse()   # the sticky crumb first, then last
            plan.append((target, m, c.request("GET", "/headers?m=" + m, crumbs)))
        for target, m, sid in plan:
            st = c.response(sid, 15)
            self.assertStreamOK(st)
            self.assertEqual(st.header("x-server"), target, st)
            self.assertEqual(st.set_cookies("SRV"), [], "a valid cookie was set again: %r" % st)
            recs = recorded([self.s1, self.s2], lambda r: r.query.get("m") == m)
            self.assertEqual([n for n, _ in recs], [target])
            rec = recs[0][1]
            self.assertEqual(len(rec.header_all("cookie")), 1, rec.headers)
            self.assertEqual(rec.cookies(), [("x", "9")], "SRV must be removed (insert mode) and "
                             "the other crumb kept: %r" % rec.headers)

    def test_forwarded_headers_as_for_http11(self):
        c = self.h2()
        st = c.response(c.request("GET", "/headers?v=2", [("x-forwarded-for", "1.2.3.4"),
                                                         ("x-forwarded-host", "evil.example")],
                                  authority="app.example"), 15)
        self.assertStreamOK(st)
        h2rec = st.json()["headers"]
        with Http11Client(LOCAL, self.port, tls=True) as h1:
            r = h1.request("GET", "/headers?v=1", [("Host", "app.example"),
                                                   ("X-Forwarded-For", "1.2.3.4"),
                                                   ("X-Forwarded-Host", "evil.example")])
        self.assertStatus(r, 200, self.gw)
        h1rec = r.json()["headers"]

        def fwd(hs):
            return sorted((k.lower(), v) for k, v in hs if k.lower().startswith("x-forwarded-"))

        expected = [("x-forwarded-for", "127.0.0.1"), ("x-forwarded-host", "app.example"),
                    ("x-forwarded-port", str(self.port)), ("x-forwarded-proto", "https")]
        self.assertEqual(fwd(h1rec), expected, h1rec)
        self.assertEqual(fwd(h2rec), expected, "h2 must get the headers HTTP/1.1 gets: %r" % h2rec)
        self.assertEqual([v for k, v in h2rec if k.lower() == "host"], ["app.example"], h2rec)
        self.assertEqual([k for k, _ in h2rec if k.startswith(":")], [],
                         "pseudo-headers reached the server: %r" % h2rec)

    def test_100_streams_without_cookie_share_one_server_and_one_cookie(self):
        c = self.h2()
        settings = c.wait_settings(10)
        self.assertIsNotNone(settings, "no SETTINGS from the server")
        self.assertGreaterEqual(settings.get(SETTING["MAX_CONCURRENT_STREAMS"], 1 << 31), 100)
        m = marker()
        sids = [c.request("GET", "/slow?ms=300&m=%s&i=%d" % (m, i)) for i in range(100)]
        sts = c.responses(sids, 40)
        for st in sts:
            self.assertStreamOK(st)
        servers = collections.Counter(st.header("x-server") for st in sts)
        self.assertEqual(len(servers), 1, "streams of one connection without persistence went to "
                         "several servers: %r" % servers)
        values = collections.Counter(tuple(c["value"] for c in st.set_cookies("SRV")) for st in sts)
        self.assertEqual(len(values), 1, "responses carry different cookies: %r" % values)
        (value,), = values.keys()
        self.assertTrue(value)
        recs = recorded([self.s1, self.s2], lambda r: r.query.get("m") == m)
        self.assertEqual(len(recs), 100)
        self.assertEqual({n for n, _ in recs}, set(servers))
        # The cookie names that server.
        st = c.get("/?after=1", [("cookie", "SRV=" + value)], 15)
        self.assertEqual(st.header("x-server"), next(iter(servers)), st)

    def test_a_stalled_stream_does_not_stall_the_others(self):
        # Stream A: a slow server. Stream B: a big download the client does not
        # acknowledge (its stream window stays shut). Both must leave C alone.
        c = self.h2(connection_window=64 * MiB)
        a = c.request("GET", "/slow?ms=6000")
        b = c.request("GET", "/download?size=%d" % (16 * MiB))
        c.hold.add(b)
        t0 = time.monotonic()
        cst = c.response(c.request("GET", "/?c=1"), 15)
        elapsed = time.monotonic() - t0
        self.assertStreamOK(cst)
        self.assertLess(elapsed, 4.0, "stream C waited %.1fs behind a slow or stalled stream" % elapsed)
        self.assertFalse(c.streams[a].done, "the slow stream finished too early: %r" % c.streams[a])
        self.assertFalse(c.streams[b].done)
        c.release(b)
        self.assertStreamOK(c.response(a, 15))
        stb = c.response(b, 60)
        self.assertStreamOK(stb)
        self.assertEqual(stb.length, 16 * MiB)
        self.assertEqual(stb.sha256, download_sha256(16 * MiB))

    def test_upload_on_many_streams_at_once(self):
        c = self.h2()
        datas = [body_bytes(300 * 1024 + i, b"%d" % i) for i in range(8)]
        sids = [c.request("POST", "/upload", [("content-length", str(len(d)))], end_stream=False)
                for d in datas]
        # Interleave the bodies by 16 KiB slices across the streams.
        offs = [0] * len(datas)
        while any(o < len(d) for o, d in zip(offs, datas)):
            for i, (sid, d) in enumerate(zip(sids, datas)):
                if offs[i] < len(d):
                    piece = d[offs[i]:offs[i] + 16384]
                    offs[i] += len(piece)
                    c.send_data(sid, piece, end_stream=offs[i] == len(d))
        for sid, d in zip(sids, datas):
            st = c.response(sid, 30)
            self.assertStreamOK(st)
            self.assertEqual(st.json(), {"sha256": hashlib.sha256(d).hexdigest(), "length": len(d)})


class H2OneWorkerTest(H2TestCase):
    # One worker, so that both connections below share its buffer pool.
    gateway_kw = dict(workers=1)

    def test_a_short_response_held_by_its_stream_window_ends_when_it_opens(self):
        # The whole response comes with its head (read ahead from the
        # server); the client's 1,000-byte stream window takes part of it at
        # once, and the rest waits for the window, however long.
        c = self.h2(settings={"INITIAL_WINDOW_SIZE": 1000})
        sid = c.request("GET", "/download?size=8000")
        c.hold.add(sid)
        c.wait(lambda: sid in c.streams and c.streams[sid].length >= 1000, 10)
        c.wait(lambda: False, 0.5)
        self.assertEqual(c.streams[sid].length, 1000)
        self.assertFalse(c.streams[sid].done)
        # Meanwhile another response passes through the gateway's buffers:
        # the held bytes must not be the ones it reused.
        other = self.h2()
        pad = "z" * 7000
        ost = other.response(other.request("GET", "/headers", [("x-pad", pad)]), 15)
        self.assertStreamOK(ost)
        self.assertIn(pad, ost.body.decode())
        c.release(sid)
        st = c.response(sid, 15)
        self.assertStreamOK(st)
        self.assertEqual(st.length, 8000)
        self.assertEqual(st.sha256, download_sha256(8000))


# ----------------------------------------------------------- malformed input
MALFORMED = [
    # (case, header list after the x-case marker is added; {A}: the authority)
    ("no_path", [(":method", "GET"), (":scheme", "https"), (":authority", "{A}")]),
    ("path_without_slash", [(":method", "GET"), (":scheme", "https"), (":authority", "{A}"),
                            (":path", "m?bad=1")]),
    ("empty_path", [(":method", "GET"), (":scheme", "https"), (":authority", "{A}"), (":path", "")]),
    ("no_method", [(":scheme", "https"), (":authority", "{A}"), (":path", "/m")]),
    ("no_scheme", [(":method", "GET"), (":authority", "{A}"), (":path", "/m")]),
    ("duplicate_path", [(":method", "GET"), (":scheme", "https"), (":authority", "{A}"),
                        (":path", "/m"), (":path", "/m2")]),
    ("unknown_pseudo", [(":method", "GET"), (":scheme", "https"), (":authority", "{A}"),
                        (":path", "/m"), (":foo", "bar")]),
    ("response_pseudo", [(":method", "GET"), (":scheme", "https"), (":authority", "{A}"),
                         (":path", "/m"), (":status", "200")]),
    ("pseudo_after_regular", [(":method", "GET"), (":scheme", "https"), (":authority", "{A}"),
                              ("x-before", "1"), (":path", "/m")]),
    ("uppercase_name", [(":method", "GET"), (":scheme", "https"), (":authority", "{A}"),
                        (":path", "/m"), ("X-Upper", "1")]),
    ("space_in_name", [(":method", "GET"), (":scheme", "https"), (":authority", "{A}"),
                       (":path", "/m"), ("x bad", "1")]),
    ("crlf_in_value", [(":method", "GET"), (":scheme", "https"), (":authority", "{A}"),
                       (":path", "/m"), ("x-bad", "a\r\nx-injected: 1")]),
    ("nul_in_value", [(":method", "GET"), (":scheme", "https"), (":authority", "{A}"),
                      (":path", "/m"), ("x-bad", "a\x00b")]),
    ("connection", [(":method", "GET"), (":scheme", "https"), (":authority", "{A}"),
                    (":path", "/m"), ("connection", "keep-alive")]),
    ("keep_alive", [(":method", "GET"), (":scheme", "https"), (":authority", "{A}"),
                    (":path", "/m"), ("keep-alive", "timeout=5")]),
    ("proxy_connection", [(":method", "GET"), (":scheme", "https"), (":authority", "{A}"),
                          (":path", "/m"), ("proxy-connection", "keep-alive")]),
    ("transfer_encoding", [(":method", "GET"), (":scheme", "https"), (":authority", "{A}"),
                           (":path", "/m"), ("transfer-encoding", "chunked")]),
    ("upgrade", [(":method", "GET"), (":scheme", "https"), (":authority", "{A}"),
                 (":path", "/m"), ("upgrade", "websocket")]),
    ("te_gzip", [(":method", "GET"), (":scheme", "https"), (":authority", "{A}"),
                 (":path", "/m"), ("te", "gzip")]),
    ("authority_host_disagree", [(":method", "GET"), (":scheme", "https"),
                                 (":authority", "a.example"), (":path", "/m"),
                                 ("host", "b.example")]),
]


# Cases where a stream error is not enough: README "`:authority` and `Host`
# that differ get 400" (a request the gateway understood and refuses).
STATUS_400 = {"authority_host_disagree"}


class H2MalformedTest(H2TestCase):
    def assertStreamError(self, st, case):
        if case in STATUS_400:
            self.assertEqual(st.status, 400, "%s: want status 400, got %r" % (case, st))
            return
        # reset -1 is the client library's own reset (it choked on the
        # answer), not the server's stream error.
        ok = (st.status == 400) or (st.reset == ERR["PROTOCOL_ERROR"])
        self.assertTrue(ok, "%s: want a 400 or RST_STREAM PROTOCOL_ERROR, got %r" % (case, st))

    def test_te_trailers_is_accepted(self):
        # The one TE value HTTP/2 allows (RFC 9113 §8.2.2), next to te_gzip above.
        c = self.h2()
        m = marker()
        st = c.get("/headers?m=" + m, [("te", "trailers")], timeout=15)
        self.assertStreamOK(st)
        recs = recorded([self.s1, self.s2], lambda r: r.query.get("m") == m)
        self.assertEqual(len(recs), 1, recs)

    def test_malformed_requests_get_stream_errors_and_never_reach_a_server(self):
        c = self.h2()
        self.assertStreamOK(c.get("/ok?n=first", timeout=15))
        for case, headers in MALFORMED:
            with self.subTest(case=case):
                if c.closed or c.goaways:    # a case before this one failed so
                    c = self.h2()
                hs = [(k, v.replace("{A}", self.authority)) for k, v in headers]
                hs.append(("x-case", case))
                st = c.response(c.send_headers(hs), 10)
                # The connection survives a stream error: the next stream works.
                ok = c.get("/ok?after=" + case, timeout=15)
                self.assertEqual(c.goaways, [], "%s: a stream error must not end the connection "
                                 "(%r)" % (case, st))
                self.assertStreamError(st, case)
                self.assertStreamOK(ok)
        reached = recorded([self.s1, self.s2],
                           lambda r: r.header("x-case") or r.path in ("/m", "/m2", "m")
                           or r.header("x-injected"))
        self.assertEqual(reached, [], "malformed requests reached a server: %r" % reached)

    def test_content_length_that_disagrees_with_data(self):
        c = self.h2()
        cases = [("cl_more_than_data", 100, 50), ("cl_less_than_data", 10, 20),
                 ("cl_with_no_data", 5, 0)]
        for case, cl, n in cases:
            with self.subTest(case=case):
                hs = c.request_headers("POST", "/upload?case=" + case,
                                       [("content-length", str(cl)), ("x-case", case)])
                if c.closed or c.goaways:
                    c = self.h2()
                sid = c.send_headers(hs, end_stream=(n == 0))
                if n:
                    c.send_data(sid, b"z" * n, end_stream=True)
                st = c.response(sid, 10)
                self.assertStreamError(st, case)
                ok = c.get("/ok?after=" + case, timeout=15)
                self.assertStreamOK(ok)
        time.sleep(0.5)
        done = recorded([self.s1, self.s2], lambda r: r.header("x-case") and r.complete)
        self.assertEqual(done, [], "a request whose body disagreed with its content-length reached "
                         "a server whole: %r" % done)
        self.assertEqual(c.goaways, [])


# -------------------------------------------------------------------- floods
def _send_batches(raw, chunks, read=True):
    """Sends the byte chunks one by one, reading between them; returns the
    number sent before the connection ended."""
    for i, ch in enumerate(chunks):
        if not raw.send(ch):
            return i
        if read:
            raw.read(0.001)
    return len(chunks)


class H2FloodTest(H2TestCase):
    gateway_env = FLOOD_GATEWAY_ENV

    def get_block(self, path="/"):
        return headers_block([(":method", "GET"), (":scheme", "https"),
                              (":authority", self.authority), (":path", path)])

    def assertCutOff(self, raw, what, t0, bound=10.0, need_goaway=True):
        """The connection ends within bound seconds of t0. need_goaway: it
        says so with a GOAWAY first (unless a reset ate it). A client that
        does not read cannot be told: its pipe is full, and waiting for it
        to drain is what a flood wants, so there only the close counts."""
        closed = raw.wait_closed(bound)
        elapsed = time.monotonic() - t0
        self.assertTrue(closed, "%s: the connection is still open after %.1fs (GOAWAY: %r, send "
                        "failed: %r)\n%s" % (what, elapsed, raw.goaways, raw.send_failed,
                                              self.gw.describe()))
        # A close with unread input may reach us as a reset that eats the
        # GOAWAY; it must be there whenever the connection ended cleanly.
        # Under TLS, Python reports such an abrupt close as SSLEOFError.
        reset = any(isinstance(e, (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError))
                    for e in (raw.send_failed, raw.read_error))
        self.assertTrue(raw.goaways or reset or not need_goaway,
                        "%s: closed without a GOAWAY (send failed: %r, read error: %r)"
                        % (what, raw.send_failed, raw.read_error))
        # A flood is an error: a GOAWAY saying NO_ERROR would be a graceful
        # close (as on idle or shutdown), not the flood being refused.
        self.assertEqual([g for g in raw.goaways if g[1] == ERR["NO_ERROR"]], [],
                         "%s: GOAWAY NO_ERROR for a flood: %r" % (what, raw.goaways))
        return reset

    def _other_client_loop(self, stop, results):
        try:
            with H2Client(LOCAL, self.port, timeout=10) as c:
                while not stop.is_set():
                    st = c.get("/other?n=%d" % len(results), timeout=10)
                    results.append(st.status if not st.reset else "reset")
                    time.sleep(0.02)
        except Exception as e:   # reported by the test
            results.append(e)

    def test_rapid_reset_ends_in_goaway_and_others_keep_working(self):
        stop = threading.Event()
        others = []
        t = threading.Thread(target=self._other_client_loop, args=(stop, others), daemon=True)
        t.start()
        self.assertTrue(wait_until(lambda: len(others) >= 2, 10), "the other client got nowhere: %r"
                        % others)
        raw = RawH2(LOCAL, self.port)
        self.addCleanup(raw.close)
        block = self.get_block("/rapid")
        rst = struct.pack("!I", ERR["CANCEL"])
        chunks = []
        for b in range(50):
            chunk = bytearray()
            for i in range(100):
                sid = 1 + 2 * (b * 100 + i)
                chunk += frame(HEADERS, FLAG_END_HEADERS | FLAG_END_STREAM, sid, block)
                chunk += frame(RST_STREAM, 0, sid, rst)
            chunks.append(bytes(chunk))
        t0 = time.monotonic()
        sent = _send_batches(raw, chunks)
        self.assertCutOff(raw, "rapid reset (%d of 5000 streams sent)" % (sent * 100), t0)
        # The other connection, open since before the flood, goes on working.
        n_after = len(others)
        self.assertTrue(wait_until(lambda: len(others) >= n_after + 3, 10),
                        "the other connection stopped getting answers: %r" % others[-5:])
        stop.set()
        t.join(15)
        bad = [x for x in others if x != 200]
        self.assertEqual(bad, [], "the other connection suffered: %r" % bad[:20])
        self.assertStreamOK(self.h2().get("/after", timeout=15))

    def test_continuation_flood_is_cut_off(self):
        for kind in ("headers", "empty"):
            with self.subTest(frames=kind):
                raw = RawH2(LOCAL, self.port)
                self.addCleanup(raw.close)
                first = frame(HEADERS, FLAG_END_STREAM, 1, self.get_block("/flood"))
                if kind == "headers":
                    block = headers_block([("x-flood-%d" % i, "v" * 40) for i in range(20000)])
                    pieces = [block[i:i + 48] for i in range(0, len(block), 48)]
                else:
                    pieces = [b""] * 100000
                frames = [frame(CONTINUATION, 0, 1, p) for p in pieces]   # never END_HEADERS
                chunks = [first] + [b"".join(frames[i:i + 500]) for i in range(0, len(frames), 500)]
                t0 = time.monotonic()
                sent = _send_batches(raw, chunks)
                self.assertCutOff(raw, "CONTINUATION flood of %s frames (%d batches of %d sent)"
                                  % (kind, sent, len(chunks)), t0)
                self.assertLess(time.monotonic() - t0, 15)
        reached = recorded([self.s1, self.s2], lambda r: r.path == "/flood")
        self.assertEqual(reached, [], "a flooded request reached a server")
        self.assertStreamOK(self.h2().get("/after", timeout=15))

    def test_ping_and_settings_floods_from_a_client_that_does_not_read(self):
        for kind, one in (("PING", frame(PING, 0, 0, b"floodfld")),
                          ("SETTINGS", frame(SETTINGS, 0, 0))):
            with self.subTest(frames=kind):
                raw = RawH2(LOCAL, self.port, rcvbuf=4096, timeout=15)
                self.addCleanup(raw.close)
                raw.read(0.5)     # the server's SETTINGS, acknowledged
                # Never reading, and enough frames that their answers (17
                # bytes a PING ACK, 9 a SETTINGS ACK) overflow the largest
                # send buffer the kernel gives a socket (tcp_wmem max, 4 MiB
                # here) twice over: a gateway that keeps up with its writes
                # meets the flood only once the pipe is full.
                ack = 17 if kind == "PING" else 9
                chunks = [one * 5000] * (8 * MiB // (5000 * ack) + 1)
                t0 = time.monotonic()
                sent = _send_batches(raw, chunks, read=False)
                if isinstance(raw.send_failed, socket.timeout):
                    self.fail("%s flood: the gateway stopped reading (%d of %d batches taken) "
                              "instead of ending the flood with GOAWAY" % (kind, sent, len(chunks)))
                self.assertCutOff(raw, "%s flood (%d of %d batches sent)" % (kind, sent, len(chunks)),
                                  t0, bound=15, need_goaway=False)
        self.assertStreamOK(self.h2().get("/after", timeout=15))

    def test_a_client_that_never_reads_does_not_grow_gateway_memory(self):
        streams, size = 100, 16 * MiB
        warm = self.h2()
        for st in warm.responses([warm.request("GET", "/download?size=%d" % MiB) for _ in range(4)],
                                 30):
            self.assertStreamOK(st)
        warm.close()
        base = self.gw.rss_kib()
        for windows in ("default", "open"):
            with self.subTest(windows=windows):
                kw = {}
                if windows == "open":
                    # The client grants all the window it can: only the TCP
                    # connection it stops reading holds the gateway back.
                    kw = dict(settings={"INITIAL_WINDOW_SIZE": MAX_WINDOW},
                              connection_window=MAX_WINDOW)
                c = self.h2(keep_bodies=False, rcvbuf=65536, **kw)
                m = marker()
                sids = [c.request("GET", "/download?size=%d&m=%s&i=%d" % (size, m, i))
                        for i in range(streams)]
                # Read the response heads, then stop reading.
                c.wait(lambda: all(c.streams[s].status for s in sids) or c.closed, 30)
                heads = sum(1 for s in sids if c.streams[s].status == 200)
                self.assertEqual(heads, streams, "not every stream got its response head")
                reached = wait_until(lambda: len(recorded([self.s1, self.s2],
                                                          lambda r: r.query.get("m") == m)) == streams, 10)
                self.assertTrue(reached, "not every request reached a server")
                peak = base
                for _ in range(8):
                    time.sleep(0.5)
                    peak = max(peak, self.gw.rss_kib())
                growth = (peak - base) / 1024.0
                got = sum(c.streams[s].length for s in sids) / MiB
                self.assertLess(growth, NO_READ_RSS_BOUND_MIB,
                                "gateway RSS grew %.1f MiB while a client did not read %d x %d MiB "
                                "(it took %.1f MiB)" % (growth, streams, size // MiB, got))
                self.assertLess(got, streams * size / MiB / 4, "the client read most of it anyway")
                # The gateway still serves other connections meanwhile.
                self.assertStreamOK(self.h2().get("/alive", timeout=15))
                c.close()
                time.sleep(0.5)


# --------------------------------------------------------- limits, shutdown
class H2SettingsTest(H2TestCase):
    gateway_kw = dict(limits={"h2_max_concurrent_streams": 50})

    def test_max_concurrent_streams_advertised_and_enforced(self):
        c = self.h2()
        settings = c.wait_settings(10)
        self.assertIsNotNone(settings, "no SETTINGS frame from the server")
        self.assertEqual(settings.get(SETTING["MAX_CONCURRENT_STREAMS"]), 50,
                         "SETTINGS_MAX_CONCURRENT_STREAMS must be limits.h2_max_concurrent_streams: "
                         "%r" % settings)
        c.close()
        raw = RawH2(LOCAL, self.port)
        self.addCleanup(raw.close)
        self.assertTrue(raw.wait(lambda: raw.server_settings is not None, 10))
        m = marker()
        sids = [1 + 2 * i for i in range(60)]
        data = b"".join(frame(HEADERS, FLAG_END_HEADERS | FLAG_END_STREAM, sid,
                              headers_block([(":method", "GET"), (":scheme", "https"),
                                             (":authority", self.authority),
                                             (":path", "/slow?ms=1500&m=%s&s=%d" % (m, sid))]))
                         for sid in sids)
        self.assertTrue(raw.send(data))
        raw.wait(lambda: all(raw.status(s) is not None or s in raw.resets for s in sids)
                 or bool(raw.goaways), 20)
        ok = [s for s in sids if raw.status(s) == 200]
        refused = [s for s in sids if raw.resets.get(s) in (ERR["REFUSED_STREAM"],
                                                             ERR["PROTOCOL_ERROR"])]
        self.assertLessEqual(len(ok), 50, "more streams than the limit were served")
        time.sleep(0.5)    # what the gateway accepted has reached a server by now
        reached = recorded([self.s1, self.s2], lambda r: r.query.get("m") == m)
        # Every stream was opened at once and each takes 1.5 s, so only the
        # first 50 (ids up to 99) may ever be in flight: a later one reaching
        # a server means the limit was not enforced.
        beyond = sorted(int(r.query["s"]) for _, r in reached if int(r.query["s"]) > sids[49])
        self.assertEqual(beyond, [], "streams past the limit of 50 reached servers")
        self.assertLessEqual(len(reached), 50, "more than 50 concurrent streams reached servers")
        if raw.goaways:
            # nghttp2 treats a peer that exceeds the acknowledged limit as a
            # connection error (GOAWAY PROTOCOL_ERROR) rather than refusing
            # the extra streams. Its last-stream-id names the last stream the
            # gateway took: nothing above it may have reached a server, and
            # whatever was answered before the close is a 200.
            self.assertEqual([code for _, code, _ in raw.goaways],
                             [ERR["PROTOCOL_ERROR"]] * len(raw.goaways), raw.goaways)
            last = min(l for l, _, _ in raw.goaways)
            above = sorted(int(r.query["s"]) for _, r in reached if int(r.query["s"]) > last)
            self.assertEqual(above, [], "streams above GOAWAY's last-stream-id %d reached servers"
                             % last)
            self.assertEqual([s for s in sids if raw.status(s) not in (None, 200)], [],
                             {s: raw.status(s) for s in sids})
        else:
            # Refusing instead (RST_STREAM REFUSED_STREAM or PROTOCOL_ERROR
            # per extra stream): the streams within the limit are served.
            self.assertGreaterEqual(len(ok), 1, "resets=%r" % raw.resets)
            self.assertEqual(len(ok) + len(refused), 60,
                             "each stream is served or refused: ok=%d refused=%d resets=%r"
                             % (len(ok), len(refused), raw.resets))


class H2HeaderListSizeTest(H2TestCase):
    gateway_kw = dict(limits={"max_header_bytes": "4KiB"})

    def test_header_list_size_advertised_and_enforced(self):
        c = self.h2()
        settings = c.wait_settings(10)
        self.assertIsNotNone(settings, "no SETTINGS frame from the server")
        self.assertEqual(settings.get(SETTING["MAX_HEADER_LIST_SIZE"]), 4096,
                         "SETTINGS_MAX_HEADER_LIST_SIZE must be limits.max_header_bytes: %r"
                         % settings)
        # The control: a header well within the limit passes.
        self.assertStreamOK(c.get("/small", [("x-small", "s" * 2000)], timeout=15))
        m = marker()
        st = c.get("/big?m=" + m, [("x-big", "b" * 6000)], timeout=15)
        self.assertTrue(st.status == 431 or (st.reset is not None and st.reset >= 0),
                        "a 6000-byte header past a 4 KiB limit: want 431 or RST_STREAM from the "
                        "server, got %r\n%s" % (st, self.gw.describe()))
        # A stream error, not a connection error: the connection goes on.
        self.assertStreamOK(c.get("/after", timeout=15))
        self.assertEqual(c.goaways, [])
        self.assertFalse(c.closed)
        time.sleep(0.3)
        self.assertEqual(recorded([self.s1, self.s2], lambda r: r.query.get("m") == m), [],
                         "a request over the header limit reached a server")


class H2IdleTimeoutTest(H2TestCase):
    # The HTTP/2 idle timeout is timeouts.keepalive (README).
    gateway_kw = dict(timeouts={"keepalive": "1500ms"})

    def assertClosedWhenIdle(self, c, t0, what):
        closed = c.wait_closed(8)
        elapsed = time.monotonic() - t0
        self.assertTrue(closed, "%s: still open %.1f s later (keepalive 1500ms); GOAWAY %r"
                        % (what, elapsed, c.goaways))
        self.assertTrue(c.goaways, "%s: closed without a GOAWAY" % what)
        self.assertEqual(c.goaways[0][1], ERR["NO_ERROR"], "%s: an idle close is graceful: %r"
                         % (what, c.goaways))
        self.assertGreater(elapsed, 1.0, "%s: closed after %.2f s, before the 1500ms timeout"
                           % (what, elapsed))
        self.assertLess(elapsed, 5.0, "%s: closed only after %.2f s" % (what, elapsed))

    def test_an_idle_connection_gets_goaway_and_is_closed(self):
        # (A connection that never opens a stream is closed by
        # timeouts.http_request, from accept, as on HTTP/1.1.)
        c = self.h2()
        self.assertStreamOK(c.get("/warm", timeout=15))
        self.assertClosedWhenIdle(c, time.monotonic(), "an h2 connection idle after a request")

    def test_a_stream_in_flight_is_not_cut(self):
        c = self.h2()
        t0 = time.monotonic()
        st = c.get("/slow?ms=3000", timeout=15)
        self.assertStreamOK(st)
        self.assertEqual(bytes(st.body), b"slow done\n")
        self.assertGreater(time.monotonic() - t0, 2.5)
        self.assertEqual(c.goaways, [], "GOAWAY while a stream was in flight (keepalive is the "
                         "idle timeout, and the connection was not idle)")
        # Still usable right after.
        self.assertStreamOK(c.get("/after", timeout=15))


class H2RequestHeadTimeoutTest(H2TestCase):
    # keepalive and client far away, so only http_request can end it.
    gateway_kw = dict(timeouts={"http_request": "1s", "keepalive": "60s", "client": "60s"})

    def test_unfinished_header_block_is_closed_by_http_request(self):
        raw = RawH2(LOCAL, self.port)
        self.addCleanup(raw.close)
        self.assertTrue(raw.wait(lambda: raw.server_settings is not None, 10))
        m = marker()
        block = headers_block([(":method", "GET"), (":scheme", "https"),
                               (":authority", self.authority), (":path", "/unfinished?m=" + m)])
        t0 = time.monotonic()
        # HEADERS without END_HEADERS, and no CONTINUATION ever: the request
        # head never completes.
        self.assertTrue(raw.send(frame(HEADERS, FLAG_END_STREAM, 1, block)))
        closed = raw.wait_closed(8)
        elapsed = time.monotonic() - t0
        self.assertTrue(closed, "a header block left unfinished kept the connection open %.1f s "
                        "(timeouts.http_request is 1s)\n%s" % (elapsed, self.gw.describe()))
        self.assertLess(elapsed, 5.0, "closed only after %.2f s (http_request 1s)" % elapsed)
        self.assertEqual(recorded([self.s1, self.s2], lambda r: r.query.get("m") == m), [])


class H2AlpnTest(H2TestCase):
    """tls.alpn: [http/1.1]: the gateway must not negotiate h2."""

    def setUp(self):
        self.s1, self.s2 = self.servers("s1", "s2")
        cfg = basic_config([self.s1, self.s2])
        for l in cfg["listeners"]:
            if "tls" in l:
                l["tls"] = dict(l["tls"], alpn=["http/1.1"])
        self.gw = self.gateway(cfg)
        self.port = self.gw.port("https")

    def test_h2_not_negotiated_when_not_configured(self):
        with self.assertRaises(NotH2):
            H2Client(LOCAL, self.port, alpn=("h2", "http/1.1")).close()
        r = curl(self.url("/"), http="2")
        self.assertStatus(r, 200, self.gw)
        self.assertEqual(r.version, "HTTP/1.1", "curl --http2 got %s with tls.alpn [http/1.1]"
                         % r.version)


class H2AccessLogTest(H2TestCase):
    def setUp(self):
        self.skip_on_standin("the access log")
        d = tempfile.mkdtemp(prefix="sag-h2-log-")
        self.addCleanup(shutil.rmtree, d, True)
        self.log_path = os.path.join(d, "access.log")
        self.gateway_kw = dict(access_log={"path": self.log_path, "format": "json"})
        super().setUp()

    def log_entries(self, pred, n, timeout=5.0):
        def read():
            try:
                with open(self.log_path) as f:
                    # complete lines only: the log thread may be mid-line
                    lines = [l for l in f.read().split("\n")[:-1] if l.strip()]
            except FileNotFoundError:
                return None
            out = [json.loads(l) for l in lines]
            out = [o for o in out if pred(o)]
            return out if len(out) >= n else None
        return wait_until(read, timeout) or read() or []

    def test_bytes_are_counted_for_head_and_204(self):
        c = self.h2()
        m = marker()
        head = c.response(c.request("HEAD", "/download?size=5000&m=" + m), 15)
        self.assertStreamOK(head)
        self.assertEqual(head.length, 0, "a HEAD response carried DATA: %r" % head)
        nc = c.get("/status?code=204&m=" + m, timeout=15)
        self.assertStreamOK(nc, 204)
        entries = self.log_entries(lambda o: m in o.get("path", ""), 2)
        self.assertEqual(len(entries), 2, "want 2 access log lines for %s in %s" % (m, entries))
        by_method = {o["method"]: o for o in entries}
        self.assertEqual(set(by_method), {"HEAD", "GET"}, entries)
        for method, status in (("HEAD", 200), ("GET", 204)):
            o = by_method[method]
            self.assertEqual(int(o["status"]), status, o)
            self.assertGreater(int(o["bytes"]), 0, "%s over h2 logged 0 bytes though its response "
                               "head was sent: %r" % (method, o))

    def test_a_later_stream_is_timed_from_the_read_that_brought_it(self):
        # A stream's start is the time of the read that brought its HEADERS
        # (one clock reading per read), its wall-clock time derived when the
        # line is written: a stream opened a while after the connection's
        # first must be logged at its own time, not at an earlier read's.
        c = self.h2()
        m = marker()
        self.assertStreamOK(c.get("/warm?m=" + m, timeout=15))
        time.sleep(0.5)
        before = time.time()
        self.assertStreamOK(c.get("/slow?ms=300&m=" + m, timeout=15))
        after = time.time()
        entries = self.log_entries(lambda o: m in o.get("path", "") and "slow" in o["path"], 1)
        self.assertEqual(len(entries), 1, entries)
        slow = entries[0]
        start = json_log_time(slow)
        self.assertGreaterEqual(int(slow["tt"]), 250, slow)
        self.assertGreaterEqual(start, before - 0.05, "logged before the stream was sent: %r" % slow)
        self.assertLessEqual(start + int(slow["tt"]) / 1000.0, after + 0.05, slow)
        self.assertEqual(int(slow["tq"]), 0, "a HEADERS frame read whole: %r" % slow)


class H2ShutdownTest(H2TestCase):
    gateway_kw = dict(timeouts={"shutdown": "20s"})

    def test_sigterm_sends_goaway_and_in_flight_streams_finish(self):
        busy = self.h2()
        idle = self.h2()
        self.assertStreamOK(idle.get("/warm", timeout=15))
        m = marker()
        # One stream waits for its server's head, one is in the middle of a
        # body that streams for 2 s.
        sid = busy.request("GET", "/slow?ms=2000&m=" + m)
        drip = busy.request("GET", "/drip?n=10&ms=200&m=" + m)
        self.assertTrue(wait_until(lambda: len(recorded([self.s1, self.s2],
                                                        lambda r: r.query.get("m") == m)) == 2, 5),
                        "the in-flight requests never reached a server")
        self.assertTrue(busy.wait(lambda: busy.streams[drip].length > 0, 5),
                        "the streamed body did not start")
        t0 = time.monotonic()
        self.gw.send_signal(signal.SIGTERM)
        goaway = idle.wait_goaway(5)
        self.assertIsNotNone(goaway, "an idle h2 connection got no GOAWAY on SIGTERM")
        self.assertEqual(goaway[1], ERR["NO_ERROR"], goaway)
        st = busy.response(sid, 15)
        self.assertStreamOK(st)
        self.assertEqual(bytes(st.body), b"slow done\n")
        st = busy.response(drip, 15)
        self.assertStreamOK(st)
        self.assertEqual(bytes(st.body), b"d" * 10240, "a body streaming at SIGTERM was cut")
        self.assertIsNotNone(busy.wait_goaway(5), "the busy connection got no GOAWAY")
        self.assertTrue(all(code == ERR["NO_ERROR"] for _, code, _ in busy.goaways), busy.goaways)
        self.assertGreaterEqual(busy.goaways[-1][0], max(sid, drip), "GOAWAY's last stream id "
                                "excludes an in-flight stream: %r" % busy.goaways)
        self.assertTrue(idle.wait_closed(10), "the idle h2 connection was not closed")
        rc = self.gw.wait(15)
        self.assertEqual(rc, 0, "exit code after SIGTERM\n" + self.gw.describe())
        self.assertLess(time.monotonic() - t0, 10)

    def test_sigterm_refuses_a_new_stream_on_a_busy_connection(self):
        busy = self.h2()
        self.assertStreamOK(busy.get("/warm", timeout=15))
        m = marker()
        sid = busy.request("GET", "/slow?ms=3000&m=" + m)
        self.assertTrue(wait_until(lambda: recorded([self.s1, self.s2],
                                                    lambda r: r.query.get("m") == m), 5),
                        "the in-flight request never reached a server")
        self.gw.send_signal(signal.SIGTERM)
        # The stop has begun once the listener refuses connections (docs/behaviour.md#signals).
        self.assertTrue(wait_until(lambda: connect_refused(LOCAL, self.port), 5),
                        "the listener still accepts after SIGTERM")
        late = marker()
        new = busy.request("GET", "/?late=" + late)
        st = busy.response(sid, 15)
        self.assertStreamOK(st)
        self.assertEqual(bytes(st.body), b"slow done\n", "the in-flight stream was cut")
        nst = busy.response(new, 10)
        busy.wait_closed(10)
        # Refused: RST_STREAM REFUSED_STREAM, or a GOAWAY whose last-stream-id
        # is below it (the client may retry it elsewhere: never processed).
        refused = nst.reset == ERR["REFUSED_STREAM"]
        below = [g for g in busy.goaways if g[0] < new]
        self.assertTrue(refused or (below and nst.status is None),
                        "a stream opened after SIGTERM on a busy connection was neither refused "
                        "(RST_STREAM REFUSED_STREAM) nor excluded by GOAWAY's last-stream-id: %r, "
                        "GOAWAYs %r" % (nst, busy.goaways))
        self.assertEqual(recorded([self.s1, self.s2], lambda r: r.query.get("late") == late), [],
                         "a stream opened after SIGTERM reached a server")
        self.assertEqual(self.gw.wait(15), 0, "exit code after SIGTERM\n" + self.gw.describe())


if __name__ == "__main__":
    main()
