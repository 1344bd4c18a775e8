"""Request and response bodies (docs/behaviour.md#request-path: "streamed, never buffered whole").

Uploads (Content-Length and chunked) and downloads arrive intact over the TLS
and the plain listener; a 256 MiB download and a 128 MiB upload pass through
while the gateway's resident memory stays flat.
"""

import hashlib
import os
import ssl
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from harness import (GatewayTestCase, LOCAL, Http11Client, RawConnection, basic_config,  # noqa: E402
                     curl, download_bytes, download_sha256, download_slices, main,
                     parse_responses, raw_request)

LISTENERS = ("https", "http")
MiB = 1 << 20
RSS_GROWTH_LIMIT_KIB = 4 * 1024  # issue: "a few MiB"; measured growth is ~0


class RssSampler:
    """Samples the gateway's VmRSS every few ms in a thread; `.peak` in KiB."""

    def __init__(self, gw):
        self.gw = gw
        self.peak = gw.rss_kib()
        self.samples = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.gw.rss_kib())
                self.samples += 1
            except (OSError, ValueError):
                return
            self._stop.wait(0.01)

    def stop(self):
        self._stop.set()
        self._t.join(5)
        return self.peak


# Under ASan+UBSan (SAG_SANITIZED=1) freed memory waits in ASan's quarantine
# (256 MiB by default) before reuse, so RSS follows how many bytes went
# through (each relayed piece frees a coroutine frame or two), not what the
# gateway holds: its gateway gets a quarantine small enough for the RSS
# bounds below to measure buffering again.
SANITIZED_GATEWAY_ENV = ({"ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=1"}
                         if os.environ.get("SAG_SANITIZED") else None)


class BodiesTest(GatewayTestCase):
    def setUp(self):
        self.s1 = self.servers("s1")
        self.gw = self.gateway(basic_config([self.s1]), env=SANITIZED_GATEWAY_ENV)
        self.data = os.urandom(8 * MiB)
        self.sha = hashlib.sha256(self.data).hexdigest()

    def check_upload(self, r, sha, length):
        self.assertStatus(r, 200, self.gw)
        got = r.json()
        self.assertEqual(got["length"], length, "the server got %d of %d bytes" % (got["length"], length))
        self.assertEqual(got["sha256"], sha, "the body arrived altered")

    def test_upload_content_length(self):
        for listener in LISTENERS:
            for method in ("POST", "PUT"):
                with self.subTest(listener=listener, method=method):
                    r = curl(self.gw.url(listener, "/upload"), method=method, data=self.data)
                    self.check_upload(r, self.sha, len(self.data))

    def test_upload_chunked_with_curl(self):
        for listener in LISTENERS:
            with self.subTest(listener=listener):
                r = curl(self.gw.url(listener, "/upload"), data=self.data,
                         headers=["Transfer-Encoding: chunked"])
                self.check_upload(r, self.sha, len(self.data))

    def test_upload_chunked_raw_odd_chunk_sizes(self):
        sizes = [1, 2, 4095, 4096, 65536, MiB + 3, 17, 3 * MiB - 1]
        body = os.urandom(sum(sizes))
        wire = bytearray()
        off = 0
        for i, n in enumerate(sizes):
            ext = b";name=value" if i == 2 else b""
            wire += b"%x%s\r\n" % (n, ext) + body[off:off + n] + b"\r\n"
            off += n
        wire += b"0\r\n\r\n"
        for listener in LISTENERS:
            with self.subTest(listener=listener):
                with RawConnection(LOCAL, self.gw.port(listener), tls=(listener == "https"),
                                   timeout=20) as c:
                    try:
                        c.send(b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                               b"Content-Type: application/octet-stream\r\n\r\n" + bytes(wire))
                    except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                        pass   # answered early; the response below says why
                    r = c.read_response(timeout=20)
                    self.check_upload(r, hashlib.sha256(body).hexdigest(), len(body))
                    # the connection is still usable afterwards
                    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                    self.assertStatus(c.read_response(timeout=10), 200, self.gw)

    def test_download_16mib(self):
        size = 16 * MiB
        want = download_sha256(size)
        tmp = self.temp_dir("dl-")
        for listener in LISTENERS:
            for chunked in ("0", "1"):
                with self.subTest(listener=listener, server_chunked=chunked):
                    out = os.path.join(tmp, "body")
                    r = curl(self.gw.url(listener, "/download?size=%d&chunked=%s" % (size, chunked)),
                             output=out)
                    self.assertStatus(r, 200, self.gw)
                    with open(out, "rb") as f:
                        got = f.read()
                    os.unlink(out)
                    self.assertEqual(len(got), size)
                    self.assertEqual(hashlib.sha256(got).hexdigest(), want)

    def test_downloads_on_one_keepalive_connection(self):
        for listener in LISTENERS:
            with self.subTest(listener=listener):
                with Http11Client(LOCAL, self.gw.port(listener), tls=(listener == "https")) as c:
                    for size in (0, 1, 100000, 3 * MiB + 7):
                        r = c.get("/download?size=%d" % size)
                        self.assertStatus(r, 200, self.gw)
                        self.assertEqual(r.body, download_bytes(size), "size %d" % size)
                    self.assertEqual(c.connections, 1)

    def test_whole_responses_to_a_client_that_reads_late(self):
        """Responses read whole from the server (they fit the relay buffer)
        leave in one write that the client's socket may take only part of:
        320 pipelined 15,000-byte answers (more than the 4 MiB a socket's send
        buffer grows to) to a client with a small receive buffer that reads
        nothing for half a second arrive whole and in order."""
        n, size = 320, 15000
        for listener in LISTENERS:
            with self.subTest(listener=listener):
                c = RawConnection(LOCAL, self.gw.port(listener), tls=(listener == "https"), rcvbuf=4096)
                try:
                    c.send(b"".join(b"GET /download?size=%d&i=%d HTTP/1.1\r\nHost: x\r\n\r\n" % (size, i)
                                    for i in range(n)))
                    time.sleep(0.5)
                    for i in range(n):
                        r = c.read_response(timeout=10)
                        self.assertStatus(r, 200, self.gw)
                        self.assertEqual(r.body, download_bytes(size), "response %d" % i)
                finally:
                    c.close()

    def test_http10_client_never_gets_chunked_framing(self):
        # HTTP/1.0 has no chunked coding (RFC 9112 §7): a server's chunked
        # body reaches a 1.0 client delimited by the close (or a length).
        size = 600000     # several of the fake server's 256 KiB chunks
        for listener in LISTENERS:
            with self.subTest(listener=listener):
                raw = raw_request(LOCAL, self.gw.port(listener),
                                  b"GET /download?size=%d&chunked=1 HTTP/1.0\r\nHost: x\r\n\r\n"
                                  % size, tls=(listener == "https"), timeout=20)
                rs = parse_responses(raw)
                self.assertEqual(len(rs), 1, "want one response, got %r" % raw[:300])
                r = rs[0]
                self.assertStatus(r, 200, self.gw)
                self.assertEqual([v for v in r.header_all("transfer-encoding")
                                  if "chunked" in v.lower()], [],
                                 "an HTTP/1.0 client got Transfer-Encoding: chunked: %r" % r.headers)
                self.assertEqual(len(r.body), size, "body of %d bytes, want %d (head %r)"
                                 % (len(r.body), size, r.headers))
                self.assertEqual(hashlib.sha256(r.body).hexdigest(), download_sha256(size),
                                 "the body arrived altered (chunk framing left in it?)")

    # ------------------------------------------------------------- streaming
    def warm_up(self):
        for listener in LISTENERS:
            r = curl(self.gw.url(listener, "/download?size=%d" % (4 * MiB)))
            self.assertEqual(len(r.body), 4 * MiB)
            r = curl(self.gw.url(listener, "/upload"), data=self.data)
            self.check_upload(r, self.sha, len(self.data))
        time.sleep(0.2)

    def test_large_download_is_streamed_not_buffered(self):
        size = 256 * MiB
        want = download_sha256(size)
        self.warm_up()
        base = self.gw.rss_kib()
        sampler = RssSampler(self.gw)
        try:
            with RawConnection(LOCAL, self.gw.port("http"), timeout=30, rcvbuf=256 * 1024) as c:
                c.send(b"GET /download?size=%d HTTP/1.1\r\nHost: x\r\n\r\n" % size)
                head = c.read_response(timeout=10, head_only=True)
                self.assertStatus(head, 200, self.gw)
                # A slow reader first: a proxy that reads the server without
                # back-pressure would now pile the body up in memory.
                time.sleep(1.5)
                h = hashlib.sha256()
                got = 0
                te = (head.header("transfer-encoding") or "").lower()
                self.assertNotIn("chunked", te, "the gateway re-framed a Content-Length body")
                self.assertEqual(head.header("content-length"), str(size))
                h.update(c.buf)
                got += len(c.buf)
                c.buf.clear()
                deadline = time.monotonic() + 60
                while got < size and time.monotonic() < deadline:
                    b = c.read_some(MiB, timeout=10)
                    if not b:
                        break
                    h.update(b)
                    got += len(b)
            peak = sampler.stop()
        finally:
            sampler.stop()
        self.assertEqual(got, size, "download cut short")
        self.assertEqual(h.hexdigest(), want, "download altered")
        growth = peak - base
        self.assertLess(growth, RSS_GROWTH_LIMIT_KIB,
                        "gateway RSS grew by %d KiB (base %d KiB, peak %d KiB, %d samples) during a "
                        "%d MiB download: buffering, not streaming"
                        % (growth, base, peak, sampler.samples, size // MiB))

    def test_large_upload_is_streamed_not_buffered(self):
        size = 128 * MiB
        want = download_sha256(size)   # upload the download pattern: no 128 MiB in memory here
        self.warm_up()
        base = self.gw.rss_kib()
        sampler = RssSampler(self.gw)
        try:
            with RawConnection(LOCAL, self.gw.port("http"), timeout=60) as c:
                c.send(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size)
                for piece in download_slices(size, MiB):   # the pattern, streamed
                    c.send(piece)
                r = c.read_response(timeout=60)
            peak = sampler.stop()
        finally:
            sampler.stop()
        self.check_upload(r, want, size)
        growth = peak - base
        self.assertLess(growth, RSS_GROWTH_LIMIT_KIB,
                        "gateway RSS grew by %d KiB (base %d KiB, peak %d KiB) during a %d MiB "
                        "upload: buffering, not streaming" % (growth, base, peak, size // MiB))


if __name__ == "__main__":
    main()
