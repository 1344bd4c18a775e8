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
  GET  /drip?n=N&ms=M&size=S   200 chunked: N chunks of S bytes (default 1024),
                          M ms apart (a response that streams slowly)
  GET  /ws                WebSocket (RFC 6455) echo when the request is a valid
                          upgrade (Upgrade: websocket, Connection: upgrade,
                          Sec-WebSocket-Key, Sec-WebSocket-Version: 13): 101 with
                          Sec-WebSocket-Accept, then every data frame is echoed
                          as it arrives (same opcode and FIN, unmasked, payload
                          streamed), ping gets pong, close gets the same close
                          back and the connection ends. Text commands (one
                          unfragmented text frame): "!close" the server sends
                          close 1000 and ends the connection; "!drop" the server
                          closes TCP without a close frame; "!send N" the server
                          sends a binary message of download_bytes(N).
                          Not an upgrade: 426. What happened is in the
                          request's `.ws` (a WsRecord).
  anything else           as "/" (200, the body names method and target)

With `drop_requests = True` every request is read whole and then the
connection is closed without an answer; with `break_after_head = True` the
connection closes after a response's head.

stop() closes the listening socket (the port then refuses connections) and
every open connection; start() listens again on the same port.
"""

import base64
import hashlib
import json
import socket
import struct
import threading
import time
import urllib.parse

__all__ = ["FakeServer", "RecordedRequest", "WsRecord", "download_bytes", "download_sha256",
           "download_slices", "ws_accept", "ws_mask", "HOP_HEADERS", "PATTERN_LEN"]

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

_REASONS = {100: "Continue", 101: "Switching Protocols", 200: "OK", 201: "Created", 204: "No Content",
            301: "Moved Permanently", 302: "Found", 304: "Not Modified",
            400: "Bad Request", 404: "Not Found", 426: "Upgrade Required", 500: "Internal Server Error",
            502: "Bad Gateway", 503: "Service Unavailable"}

MAX_LINE = 1 << 20

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def ws_accept(key):
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 §4.2.2)."""
    if isinstance(key, str):
        key = key.encode("latin-1")
    return base64.b64encode(hashlib.sha1(key.strip() + WS_GUID).digest()).decode()


def ws_mask(data, key, offset=0):
    """data XOR the 4-byte mask key, as if data started `offset` bytes into the
    payload (masking and unmasking are the same operation)."""
    n = len(data)
    if n == 0:
        return b""
    r = offset % 4
    k = key[r:] + key[:r]
    full = (k * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(full, "big")).to_bytes(n, "big")


class WsRecord:
    """What the fake server saw of one WebSocket connection (RecordedRequest.ws).

    Counters are updated by the serving thread as frames arrive; `done` is set
    when the connection ended, with `end` saying how: "close" (the client's
    close frame arrived; `close_code` holds its code, None without one), "eof"
    (the peer closed or reset TCP without a close frame), "server-close"
    (!close), "server-drop" (!drop), "error" (a protocol error: `error`)."""

    def __init__(self):
        self.frames = 0              # data frames received (text, binary, continuation)
        self.messages = 0            # data frames with FIN
        self.bytes_in = 0            # data payload bytes received
        self.pings = 0
        self.unmasked = 0            # client frames without a mask (a protocol error)
        self.end = None
        self.close_code = None
        self.error = None
        self.done = threading.Event()


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
        self.ws = None                  # a WsRecord once GET /ws was upgraded
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

    def read_exact(self, n):
        """Exactly n bytes; raises _BadInput at EOF before them."""
        parts = []
        self.read_exact_into(n, parts.append)
        return b"".join(parts)

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
        return self._respond(sock, req, keep_alive, conn)

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

    # ------------------------------------------------------------- WebSocket
    def _websocket(self, conn, sock, req, keep_alive):
        """GET /ws: the upgrade, then the echo loop until either side ends it.
        Returns False (the connection is never reused for HTTP)."""
        def tokens(name):
            return {t.strip().lower() for v in req.header_all(name) for t in v.split(",")}

        key = req.header("sec-websocket-key")
        if ("websocket" not in tokens("upgrade") or "upgrade" not in tokens("connection")
                or not key or req.header("sec-websocket-version") != "13"):
            return self._simple(sock, req, keep_alive, 426, "websocket upgrade expected\n",
                                extra=[("Sec-WebSocket-Version", "13")])
        ws = WsRecord()
        req.ws = ws
        self._send_head(sock, 101, [("Upgrade", "websocket"), ("Connection", "Upgrade"),
                                    ("Sec-WebSocket-Accept", ws_accept(key))], True)
        try:
            ws.end = self._ws_loop(conn, sock, ws)
        except (_BadInput, OSError):
            ws.end = "eof"      # EOF or reset in the middle of a frame
        finally:
            ws.done.set()
            self._notify()
        return False

    @staticmethod
    def _ws_head(fin, opcode, length):
        b0 = (0x80 if fin else 0) | opcode
        if length < 126:
            return struct.pack("!BB", b0, length)
        if length < 65536:
            return struct.pack("!BBH", b0, 126, length)
        return struct.pack("!BBQ", b0, 127, length)

    def _ws_loop(self, conn, sock, ws):
        """Echoes frames; returns how the connection ended (see WsRecord.end)."""
        while True:
            try:
                b0, b1 = conn.read_exact(2)
            except _BadInput:
                return "eof"
            fin, opcode = bool(b0 & 0x80), b0 & 0x0F
            length = b1 & 0x7F
            if length == 126:
                length = struct.unpack("!H", conn.read_exact(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", conn.read_exact(8))[0]
            mask = conn.read_exact(4) if b1 & 0x80 else None
            if mask is None:
                ws.unmasked += 1
            if opcode >= 8:
                if length > 125 or not fin:
                    ws.error = "bad control frame"
                    return "error"
                payload = conn.read_exact(length)
                if mask:
                    payload = ws_mask(payload, mask)
                if opcode == 0x8:
                    if len(payload) >= 2:
                        ws.close_code = struct.unpack("!H", payload[:2])[0]
                    sock.sendall(self._ws_head(True, 0x8, len(payload)) + payload)
                    return "close"
                if opcode == 0x9:
                    ws.pings += 1
                    sock.sendall(self._ws_head(True, 0xA, len(payload)) + payload)
                continue   # a pong: nothing to do
            if opcode not in (0x0, 0x1, 0x2):
                ws.error = "unknown opcode %d" % opcode
                return "error"
            ws.frames += 1
            ws.bytes_in += length
            if fin:
                ws.messages += 1
            if opcode == 0x1 and fin and length <= 64:
                payload = conn.read_exact(length)
                if mask:
                    payload = ws_mask(payload, mask)
                if payload == b"!close":
                    sock.sendall(self._ws_head(True, 0x8, 12) + struct.pack("!H", 1000)
                                 + b"server bye")
                    sock.shutdown(socket.SHUT_RDWR)
                    return "server-close"
                if payload == b"!drop":
                    sock.shutdown(socket.SHUT_RDWR)
                    return "server-drop"
                if payload.startswith(b"!send "):
                    n = int(payload[6:])
                    sock.sendall(self._ws_head(True, 0x2, n))
                    for piece in _pattern_slices(n):
                        sock.sendall(piece)
                    continue
                sock.sendall(self._ws_head(True, opcode, length) + payload)
                continue
            # Streamed echo: the head goes out first, the payload as it arrives.
            sock.sendall(self._ws_head(fin, opcode, length))
            off = 0
            while off < length:
                if not conn.buf and not conn._fill():
                    return "eof"
                take = min(length - off, len(conn.buf), 256 * 1024)
                piece = bytes(conn.buf[:take])
                del conn.buf[:take]
                if mask:
                    piece = ws_mask(piece, mask, off)
                sock.sendall(piece)
                off += take

    def _respond(self, sock, req, keep_alive, conn=None):
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
        if path == "/trickle-head":
            # An interim 103, then the final head in two pieces cut mid-line,
            # `ms` apart; `die=<this server's name>` closes after the first
            # piece instead.
            ms = int(q.get("ms", "50")) / 1000.0
            body = b"trickled from %s\n" % self.name.encode()
            head = (b"HTTP/1.1 200 OK\r\nX-Server: %s\r\nContent-Type: text/plain\r\n"
                    b"Content-Length: %d\r\n\r\n" % (self.name.encode(), len(body)))
            sock.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
            time.sleep(ms)
            sock.sendall(head[:20])
            if q.get("die") == self.name:
                sock.shutdown(socket.SHUT_RDWR)
                return False
            time.sleep(ms)
            sock.sendall(head[20:] + body)
            return keep_alive
        if path == "/dribble-head":
            # A 103 and the final head's first line in one write, then
            # `lines` fields X-D<i>: <i> in writes of `every` lines 2 ms
            # apart: a head that takes many reads to come whole.
            lines, every = int(q.get("lines", "500")), int(q.get("every", "10"))
            body = b"dribbled from %s\n" % self.name.encode()
            sock.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
                         b"HTTP/1.1 200 OK\r\nX-Server: %s\r\n" % self.name.encode())
            for i in range(0, lines, every):
                time.sleep(0.002)
                sock.sendall(b"".join(b"X-D%d: %d\r\n" % (j, j)
                                      for j in range(i, min(lines, i + every))))
            sock.sendall(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            return keep_alive
        if path == "/drip":
            n, ms = int(q.get("n", "10")), int(q.get("ms", "100"))
            piece = b"d" * int(q.get("size", "1024"))
            self._send_head(sock, 200, [("Content-Type", "application/octet-stream"),
                                        ("Transfer-Encoding", "chunked")], keep_alive)
            for i in range(n):
                if i:
                    time.sleep(ms / 1000.0)
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            sock.sendall(b"0\r\n\r\n")
            return keep_alive
        if path == "/ws" and m == "GET":
            return self._websocket(conn, sock, req, keep_alive)
        body = "hello from %s: %s %s\n" % (self.name, m, req.target)
        return self._simple(sock, req, keep_alive, 200, body)
