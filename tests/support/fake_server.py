"""A fake HTTP/1.1 origin server for the integration tests (standard library only).

FakeServer(name) listens on 127.0.0.1, port 0 (see `.port`), serves each
connection in its own daemon thread with keep-alive, and records every request
it receives in `.requests` (a thread-safe copy each time it is read).

Every response carries `X-Server: <name>`. The parser is written here rather
than taken from http.server so that the test sees exactly what arrived on the
wire (header order, duplicates, obs-fold lines, chunked bodies decoded here).

Routes (any method unless noted):
  GET  /                  200 text "hello from NAME: METHOD TARGET"
  GET  /headers           200 JSON {"method", "target", "headers": [[n, v], ...], "peer"}
  POST|PUT /upload        reads the body streaming, 200 JSON {"sha256", "length"}
  GET  /download?size=N   N bytes of download_bytes(N) with Content-Length,
                          or chunked with &chunked=1
  GET  /slow?ms=N         sleeps N ms, then 200 "slow done"
  GET  /setcookie?name=..&value=..[&attrs=..]   200 with `Set-Cookie: name=value; Path=/[; attrs]`
  GET  /hop               200 with hop-by-hop response headers (see HOP_HEADERS)
  GET  /cacheable         200 with Cache-Control: max-age=60
  GET  /status?code=N     that status, short body
  GET  /broken            200 head announcing 100000 bytes, 1000 sent, then close
  GET  /healthz           `.health_status` (200 unless a test changes it at run
                          time, e.g. `srv.health_status = 500`), short body
  anything else           as "/" (200, the body names method and target)

With `drop_requests = True` every request is read whole and then the
connection is closed without an answer; with `break_after_head = True` the
connection closes after a response's head.

stop() closes the listening socket (the port then refuses connections) and
every open connection; start() listens again on the same port.
"""

import hashlib
import json
import socket
import threading
import time
import urllib.parse

__all__ = ["FakeServer", "RecordedRequest", "download_bytes", "download_sha256", "download_slices",
           "HOP_HEADERS", "PATTERN_LEN"]

# --------------------------------------------------------------------------
# Deterministic download content: a fixed pseudo-random block of a prime
# length (so it never lines up with buffer sizes), repeated.
PATTERN_LEN = 1048573


def _make_pattern():
    out = bytearray()
    seed = b"sag-fake-server-download-pattern"
    i = 0
    while len(out) < PATTERN_LEN:
        out += hashlib.sha256(seed + i.to_bytes(8, "big")).digest()
        i += 1
    return bytes(out[:PATTERN_LEN])


_PATTERN = _make_pattern()
_PATTERN2 = _PATTERN + _PATTERN  # lets any slice up to PATTERN_LEN wrap without copying
_sha_cache = {}
_sha_lock = threading.Lock()


def _pattern_slices(size, chunk=256 * 1024):
    """Yields memoryviews that together are download_bytes(size)."""
    mv = memoryview(_PATTERN2)
    off = 0
    chunk = min(chunk, PATTERN_LEN)
    while off < size:
        n = min(chunk, size - off)
        start = off % PATTERN_LEN
        yield mv[start:start + n]
        off += n


def download_slices(size, chunk=256 * 1024):
    """download_bytes(size) as a sequence of memoryviews (no copy of the whole)."""
    return _pattern_slices(size, chunk)


def download_bytes(size):
    """The exact bytes GET /download?size=N sends."""
    return b"".join(bytes(s) for s in _pattern_slices(size, PATTERN_LEN))


def download_sha256(size):
    """sha256 hex digest of download_bytes(size) (cached)."""
    with _sha_lock:
        if size in _sha_cache:
            return _sha_cache[size]
    h = hashlib.sha256()
    for s in _pattern_slices(size, PATTERN_LEN):
        h.update(s)
    d = h.hexdigest()
    with _sha_lock:
        _sha_cache[size] = d
    return d


# Response headers of GET /hop, all hop-by-hop except X-End-To-End.
HOP_HEADERS = [
    ("Connection", "X-Custom-Hop, Upgrade"),
    ("X-Custom-Hop", "1"),
    ("Keep-Alive", "timeout=5, max=100"),
    ("Proxy-Connection", "keep-alive"),
    ("Upgrade", "foo/1"),
    ("X-End-To-End", "kept"),
]

_REASONS = {100: "Continue", 200: "OK", 201: "Created", 204: "No Content",
            301: "Moved Permanently", 302: "Found", 304: "Not Modified",
            400: "Bad Request", 404: "Not Found", 500: "Internal Server Error",
            502: "Bad Gateway", 503: "Service Unavailable"}

MAX_LINE = 1 << 20


class _BadInput(Exception):
    pass


class RecordedRequest:
    """One request as the fake server saw it.

    Appended to FakeServer.requests as soon as the head has arrived; `complete`
    turns True once the whole body was read (body_sha256/body_length are final
    then)."""

    def __init__(self, method, target, version, headers, peer, raw_head):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers          # [(name, value)] in arrival order
        self.peer = peer                # (ip, port) of the connection
        self.raw_head = raw_head        # bytes of request line + header lines
        self.body_sha256 = hashlib.sha256(b"").hexdigest()
        self.body_length = 0
        self.trailers = []
        self.complete = False
        self.time = time.time()
        parsed = urllib.parse.urlsplit(target)
        self.path = parsed.path
        self.query = dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))

    def header(self, name, default=None):
        """First value of header `name` (case-insensitive), or default."""
        n = name.lower()
        for k, v in self.headers:
            if k.lower() == n:
                return v
        return default

    def header_all(self, name):
        n = name.lower()
        return [v for k, v in self.headers if k.lower() == n]

    def header_names(self):
        return [k.lower() for k, _ in self.headers]

    def cookies(self):
        """[(name, value)] from every Cookie header, in order."""
        out = []
        for v in self.header_all("cookie"):
            for part in v.split(";"):
                part = part.strip()
                if not part:
                    continue
                if "=" in part:
                    k, val = part.split("=", 1)
                    out.append((k.strip(), val.strip()))
                else:
                    out.append((part, ""))
        return out

    def __repr__(self):
        return ("RecordedRequest(%s %s %s, %d headers, body %d bytes, complete=%s, peer=%s)"
                % (self.method, self.target, self.version, len(self.headers),
                   self.body_length, self.complete, self.peer))


class _Conn:
    """Buffered reader over a socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.eof = False

    def _fill(self):
        data = self.sock.recv(256 * 1024)
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def readline(self, limit=MAX_LINE):
        """One line including its LF; b"" at EOF before any byte."""
        start = 0
        while True:
            i = self.buf.find(b"\n", start)
            if i >= 0:
                line = bytes(self.buf[:i + 1])
                del self.buf[:i + 1]
                return line
            if len(self.buf) > limit:
                raise _BadInput("line too long")
            start = len(self.buf)
            if not self._fill():
                if self.buf:
                    raise _BadInput("EOF inside a line")
                return b""

    def read_exact_into(self, n, sink):
        """Reads exactly n bytes, passing pieces to sink(bytes)."""
        while n > 0:
            if not self.buf:
                if not self._fill():
                    raise _BadInput("EOF inside a body")
            take = min(n, len(self.buf))
            sink(bytes(self.buf[:take]))
            del self.buf[:take]
            n -= take


class FakeServer:
    def __init__(self, name, host="127.0.0.1", port=0, start=True):
        self.name = name
        # When true, every complete request is answered by closing the
        # connection (a server that fails mid-request).
        self.drop_requests = False
        # When true, responses stop after their head (the connection closes).
        self.break_after_head = False
        self.host = host
        self.port = port
        self._lock = threading.Condition()
        self._requests = []
        self._conns = set()
        self._lsock = None
        self._thread = None
        self._running = False
        self.connections_accepted = 0
        self.health_status = 200      # what GET /healthz answers; change it at run time
        if start:
            self.start()

    # ---------------------------------------------------------------- control
    def start(self):
        """Listens (again) on self.port (0 picks a free one the first time)."""
        if self._running:
            return
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self.port))
        s.listen(128)
        s.settimeout(0.2)
        self.port = s.getsockname()[1]
        self._lsock = s
        self._running = True
        self._thread = threading.Thread(target=self._accept_loop, args=(s,),
                                        name="fake-%s-accept" % self.name, daemon=True)
        self._thread.start()

    def stop(self):
        """Closes the listener (the port refuses connections) and every open connection."""
        if not self._running:
            return
        self._running = False
        s = self._lsock
        self._lsock = None
        try:
            s.close()
        except OSError:
            pass
        if self._thread is not None:
            self._thread.join(timeout=2)
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                c.close()
            except OSError:
                pass

    @property
    def running(self):
        return self._running

    @property
    def address(self):
        return "%s:%d" % (self.host, self.port)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # --------------------------------------------------------------- records
    @property
    def requests(self):
        with self._lock:
            return list(self._requests)

    def clear(self):
        with self._lock:
            self._requests.clear()

    def open_connections(self):
        with self._lock:
            return len(self._conns)

    def wait_for(self, pred=lambda r: True, timeout=5.0, complete=True):
        """Waits until a recorded request satisfies pred (and is complete when
        asked); returns it, or None after timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                for r in self._requests:
                    if (r.complete or not complete) and pred(r):
                        return r
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._lock.wait(min(left, 0.1))

    def _record(self, req):
        with self._lock:
            self._requests.append(req)
            self._lock.notify_all()

    def _notify(self):
        with self._lock:
            self._lock.notify_all()

    # ---------------------------------------------------------------- serving
    def _accept_loop(self, lsock):
        while self._running:
            try:
                c, peer = lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            if not self._running:
                c.close()
                break
            c.settimeout(None)
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._conns.add(c)
                self.connections_accepted += 1
            threading.Thread(target=self._serve, args=(c, peer),
                             name="fake-%s-conn" % self.name, daemon=True).start()

    def _serve(self, sock, peer):
        conn = _Conn(sock)
        try:
            while self._running:
                keep = self._one_request(conn, sock, peer)
                if not keep:
                    break
        except (_BadInput, OSError, ValueError):
            pass
        finally:
            with self._lock:
                self._conns.discard(sock)
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _one_request(self, conn, sock, peer):
        line = conn.readline()
        while line in (b"\r\n", b"\n"):   # tolerate leading empty lines (RFC 9112 §2.2)
            line = conn.readline()
        if not line:
            return False
        raw = bytearray(line)
        parts = line.rstrip(b"\r\n").split(b" ")
        if len(parts) != 3:
            raise _BadInput("bad request line %r" % line)
        method, target, version = (p.decode("latin-1") for p in parts)
        headers = []
        total = 0
        while True:
            hl = conn.readline()
            if not hl:
                raise _BadInput("EOF in headers")
            raw += hl
            total += len(hl)
            if total > 4 * MAX_LINE:
                raise _BadInput("headers too large")
            s = hl.rstrip(b"\r\n")
            if s.endswith(b"\r"):
                s = s[:-1]
            if not s:
                break
            text = s.decode("latin-1")
            if text[:1] in (" ", "\t") and headers:
                # obs-fold: recorded as its own entry so a test can see it arrived
                headers.append(("", text))
                continue
            if ":" not in text:
                headers.append((text, ""))
                continue
            k, v = text.split(":", 1)
            headers.append((k, v.strip(" \t")))
        req = RecordedRequest(method, target, version, headers, peer, bytes(raw))
        self._record(req)

        def hval(name):
            return [v for k, v in headers if k.lower() == name]

        te = ",".join(hval("transfer-encoding")).lower()
        cl = hval("content-length")
        conn_tokens = {t.strip().lower() for v in hval("connection") for t in v.split(",")}
        if version == "HTTP/1.0":
            keep_alive = "keep-alive" in conn_tokens
        else:
            keep_alive = "close" not in conn_tokens

        if any(v.lower() == "100-continue" for v in hval("expect")) and (te or cl):
            sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")

        h = hashlib.sha256()
        length = [0]

        def sink(b):
            h.update(b)
            length[0] += len(b)

        if te:
            if te.replace(" ", "").split(",")[-1] != "chunked":
                raise _BadInput("unsupported transfer-encoding %r" % te)
            self._read_chunked(conn, sink, req)
        elif cl:
            n = int(cl[0].strip())
            conn.read_exact_into(n, sink)
        req.body_sha256 = h.hexdigest()
        req.body_length = length[0]
        req.complete = True
        self._notify()
        return self._respond(sock, req, keep_alive)

    @staticmethod
    def _read_chunked(conn, sink, req):
        while True:
            line = conn.readline(limit=4096)
            if not line:
                raise _BadInput("EOF in chunk size")
            size_s = line.split(b";", 1)[0].strip()
            try:
                size = int(size_s, 16)
            except ValueError:
                raise _BadInput("bad chunk size %r" % line)
            if size_s.startswith((b"+", b"-", b"0x", b"0X")) or size < 0:
                raise _BadInput("bad chunk size %r" % line)
            if size == 0:
                break
            conn.read_exact_into(size, sink)
            crlf = conn.readline(limit=4)
            if crlf not in (b"\r\n", b"\n"):
                raise _BadInput("chunk not followed by CRLF")
        while True:  # trailers
            line = conn.readline()
            if not line:
                raise _BadInput("EOF in trailers")
            if line in (b"\r\n", b"\n"):
                break
            t = line.rstrip(b"\r\n").decode("latin-1")
            if ":" in t:
                k, v = t.split(":", 1)
                req.trailers.append((k, v.strip()))

    # ------------------------------------------------------------- responses
    def _send_head(self, sock, status, headers, keep_alive):
        lines = ["HTTP/1.1 %d %s" % (status, _REASONS.get(status, "Status"))]
        lines.append("X-Server: %s" % self.name)
        for k, v in headers:
            lines.append("%s: %s" % (k, v))
        if not keep_alive:
            lines.append("Connection: close")
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def _simple(self, sock, req, keep_alive, status, body, ctype="text/plain",
                extra=()):
        if isinstance(body, str):
            body = body.encode()
        headers = [("Content-Type", ctype)] + list(extra)
        if status not in (204, 304) and not (100 <= status < 200):
            headers.append(("Content-Length", str(len(body))))
        self._send_head(sock, status, headers, keep_alive)
        if self.break_after_head:
            # A crash between head and body.
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return False
        if req.method != "HEAD" and status not in (204, 304):
            sock.sendall(body)
        return keep_alive

    def _respond(self, sock, req, keep_alive):
        path, q, m = req.path, req.query, req.method
        if self.drop_requests:
            # Read the whole request, answer nothing, drop the connection.
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return False
        if path == "/headers":
            body = json.dumps({"method": m, "target": req.target,
                               "headers": [[k, v] for k, v in req.headers],
                               "peer": list(req.peer)})
            return self._simple(sock, req, keep_alive, 200, body, "application/json")
        if path == "/upload" and m in ("POST", "PUT"):
            body = json.dumps({"sha256": req.body_sha256, "length": req.body_length})
            return self._simple(sock, req, keep_alive, 200, body, "application/json")
        if path == "/download":
            size = int(q.get("size", "0"))
            chunked = q.get("chunked", "0") == "1"
            hdrs = [("Content-Type", "application/octet-stream")]
            hdrs.append(("Transfer-Encoding", "chunked") if chunked
                        else ("Content-Length", str(size)))
            self._send_head(sock, 200, hdrs, keep_alive)
            if m == "HEAD":
                return keep_alive
            for piece in _pattern_slices(size):
                if chunked:
                    sock.sendall(b"%x\r\n" % len(piece))
                    sock.sendall(piece)
                    sock.sendall(b"\r\n")
                else:
                    sock.sendall(piece)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
            return keep_alive
        if path == "/broken":
            # A response that breaks off: head and part of the body, then close.
            sock.sendall(b"HTTP/1.1 200 OK\r\nX-Server: %s\r\nContent-Length: 100000\r\n\r\n"
                         % self.name.encode() + b"b" * 1000)
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return False
        if path == "/slow":
            time.sleep(int(q.get("ms", "1000")) / 1000.0)
            return self._simple(sock, req, keep_alive, 200, "slow done\n")
        if path == "/setcookie":
            c = "%s=%s; Path=/" % (q.get("name", "c"), q.get("value", "v"))
            if q.get("attrs"):
                c += "; " + q["attrs"]
            return self._simple(sock, req, keep_alive, 200, "cookie set\n",
                                extra=[("Set-Cookie", c)])
        if path == "/hop":
            return self._simple(sock, req, keep_alive, 200, "hop\n", extra=HOP_HEADERS)
        if path == "/cacheable":
            return self._simple(sock, req, keep_alive, 200, "cacheable\n",
                                extra=[("Cache-Control", "max-age=60")])
        if path == "/status":
            code = int(q.get("code", "200"))
            return self._simple(sock, req, keep_alive, code, "status %d\n" % code)
        if path == "/healthz":
            code = self.health_status
            return self._simple(sock, req, keep_alive, code, "health %d\n" % code)
        body = "hello from %s: %s %s\n" % (self.name, m, req.target)
        return self._simple(sock, req, keep_alive, 200, body)
