"""Client helpers for the integration tests (standard library + the curl binary).

- curl(url, ...)      one request through a curl process (new connection)
- Http11Client        many requests over one keep-alive (TLS) connection
- raw_request(...)    exact bytes in, everything received until close/timeout out
- RawConnection       a socket (optionally TLS) driven step by step
- parse_responses(b)  splits raw bytes into Response objects (CL, chunked, close)
"""

import http.client
import json
import os
import socket
import ssl
import subprocess
import tempfile
import time

__all__ = ["Response", "HeaderLookup", "CurlError", "curl", "Http11Client", "CookieJar", "raw_request",
           "RawConnection", "parse_responses", "parse_set_cookie", "tls_context",
           "connect_refused", "status_of", "IncompleteResponse"]

DEFAULT_TIMEOUT = 20.0


class HeaderLookup:
    """Lookups over `self.headers` ([(name, value)] as received) and
    `self.body`, shared by HTTP/1.1 responses and HTTP/2 streams."""

    def header(self, name, default=None):
        n = name.lower()
        for k, v in self.headers:
            if k.lower() == n:
                return v
        return default

    def header_all(self, name):
        n = name.lower()
        return [v for k, v in self.headers if k.lower() == n]

    def has_header(self, name):
        return any(k.lower() == name.lower() for k, _ in self.headers)

    def set_cookies(self, name=None):
        """Parsed Set-Cookie headers (see parse_set_cookie), optionally only `name`."""
        out = [parse_set_cookie(v) for v in self.header_all("set-cookie")]
        if name is not None:
            out = [c for c in out if c["name"] == name]
        return out

    def json(self):
        return json.loads(bytes(self.body))


class Response(HeaderLookup):
    def __init__(self, status, reason="", headers=None, body=b"", version="HTTP/1.1"):
        self.status = status
        self.reason = reason
        self.headers = list(headers or [])   # [(name, value)] as received
        self.body = body
        self.version = version

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return "Response(%s %s, headers=%r, body=%r)" % (
            self.status, self.reason, self.headers, self.body[:200] if self.body else self.body)


def parse_set_cookie(value):
    """'SRV=abc; Path=/; HttpOnly' -> {'name': 'SRV', 'value': 'abc',
    'attrs': {'path': '/', 'httponly': True}, 'raw': value} (attribute names lower-cased)."""
    parts = [p.strip() for p in value.split(";")]
    first = parts[0]
    name, _, val = first.partition("=")
    attrs = {}
    for p in parts[1:]:
        if not p:
            continue
        k, eq, v = p.partition("=")
        attrs[k.strip().lower()] = v.strip() if eq else True
    return {"name": name.strip(), "value": val.strip(), "attrs": attrs, "raw": value}


class CookieJar:
    """A minimal jar: name -> value, fed from Set-Cookie, sent as one Cookie header."""

    def __init__(self, initial=None):
        self.cookies = dict(initial or {})

    def update(self, resp):
        for c in resp.set_cookies():
            self.cookies[c["name"]] = c["value"]

    def header(self):
        return "; ".join("%s=%s" % kv for kv in self.cookies.items())


def tls_context(alpn=("http/1.1",)):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


# ---------------------------------------------------------------------- curl
class CurlError(Exception):
    def __init__(self, returncode, stderr, args):
        super().__init__("curl exited %d: %s (%s)" % (returncode, stderr.strip(), " ".join(args)))
        self.returncode = returncode
        self.stderr = stderr


def _parse_head_block(block):
    lines = block.split("\r\n") if "\r\n" in block else block.split("\n")
    status_line = lines[0]
    parts = status_line.split(" ", 2)
    version = parts[0]
    status = int(parts[1])
    reason = parts[2] if len(parts) > 2 else ""
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        k, _, v = line.partition(":")
        headers.append((k.strip(), v.strip()))
    return version, status, reason, headers


def curl(url, method=None, headers=(), data=None, data_file=None, cookie_jar=None,
         http="1.1", resolve=None, timeout=DEFAULT_TIMEOUT, output=None, expect100=False,
         extra_args=(), check=True):
    """Runs one curl request and returns a Response.

    headers: iterable of "Name: value" strings or (name, value) pairs.
    data: bytes to send (written to a temp file, sent with --data-binary);
    data_file: a path to send instead. cookie_jar: a path used with -b and -c.
    output: write the body to this path (Response.body is then None).
    Raises CurlError when curl fails (unless check=False: status 0 then)."""
    tmp = tempfile.mkdtemp(prefix="sag-curl-")
    head_path = os.path.join(tmp, "head")
    body_path = output or os.path.join(tmp, "body")
    args = ["curl", "-sk", "-S", "--max-time", str(timeout), "-D", head_path, "-o", body_path]
    if http == "1.1":
        args.append("--http1.1")
    elif http == "1.0":
        args.append("--http1.0")
    elif http == "2":
        args.append("--http2")
    if method:
        args += ["-X", method]
    hdrs = []
    for h in headers:
        hdrs.append(h if isinstance(h, str) else "%s: %s" % h)
    if (data is not None or data_file) and not expect100:
        hdrs.append("Expect:")
    for h in hdrs:
        args += ["-H", h]
    if data is not None:
        dpath = os.path.join(tmp, "data")
        with open(dpath, "wb") as f:
            f.write(data)
        args += ["--data-binary", "@" + dpath]
    elif data_file:
        args += ["--data-binary", "@" + data_file]
    if cookie_jar:
        args += ["-b", cookie_jar, "-c", cookie_jar]
    if resolve:
        args += ["--resolve", resolve]
    args += list(extra_args)
    args.append(url)
    try:
        p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout + 10)
        if p.returncode != 0:
            if check:
                raise CurlError(p.returncode, p.stderr.decode("utf-8", "replace"), args)
            return Response(0, p.stderr.decode("utf-8", "replace"), [], b"")
        with open(head_path, "r", encoding="latin-1") as f:
            head = f.read()
        blocks = [b for b in head.replace("\r\n", "\n").split("\n\n") if b.strip()]
        # skip interim 1xx responses
        final = blocks[-1]
        version, status, reason, hs = _parse_head_block(final)
        body = None
        if output is None:
            with open(body_path, "rb") as f:
                body = f.read()
        return Response(status, reason, hs, body, version)
    finally:
        for n in ("head", "body", "data"):
            try:
                os.unlink(os.path.join(tmp, n))
            except OSError:
                pass
        try:
            os.rmdir(tmp)
        except OSError:
            pass


# ----------------------------------------------------------- keep-alive client
class Http11Client:
    """Sequential requests over one HTTP/1.1 keep-alive connection (http.client).

    `connections` counts the TCP connections opened: a test asserting that
    everything went over one connection checks it is 1. With `cookies=True`
    a CookieJar is kept and sent (`.jar`)."""

    def __init__(self, host, port, tls=False, timeout=DEFAULT_TIMEOUT, cookies=False,
                 server_hostname="localhost"):
        self.host = host
        self.port = port
        self.tls = tls
        self.connections = 0
        self.local_ports = []
        self.jar = CookieJar() if cookies else None
        outer = self
        if tls:
            ctx = tls_context()

            class _Conn(http.client.HTTPSConnection):
                def connect(self):
                    super().connect()
                    outer.connections += 1
                    outer.local_ports.append(self.sock.getsockname()[1])

            self.conn = _Conn(host, port, timeout=timeout, context=ctx)
        else:
            class _Conn(http.client.HTTPConnection):
                def connect(self):
                    super().connect()
                    outer.connections += 1
                    outer.local_ports.append(self.sock.getsockname()[1])

            self.conn = _Conn(host, port, timeout=timeout)

    def request(self, method, path, headers=(), body=None):
        """headers: list of (name, value) (duplicates allowed) or a dict. A Host
        header given here replaces the default one."""
        if isinstance(headers, dict):
            headers = list(headers.items())
        headers = list(headers)
        if self.jar is not None and self.jar.cookies:
            headers.append(("Cookie", self.jar.header()))
        has_host = any(k.lower() == "host" for k, _ in headers)
        self.conn.putrequest(method, path, skip_host=has_host, skip_accept_encoding=True)
        for k, v in headers:
            self.conn.putheader(k, v)
        if body is not None and not any(k.lower() in ("content-length", "transfer-encoding")
                                        for k, _ in headers):
            self.conn.putheader("Content-Length", str(len(body)))
        self.conn.endheaders(body)
        r = self.conn.getresponse()
        data = r.read()
        resp = Response(r.status, r.reason, r.getheaders(),
                        data, "HTTP/1.1" if r.version == 11 else "HTTP/1.0")
        if self.jar is not None:
            self.jar.update(resp)
        return resp

    def get(self, path, headers=()):
        return self.request("GET", path, headers)

    @property
    def sock(self):
        return self.conn.sock

    def close(self):
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ------------------------------------------------------------------ raw bytes
def _connect(host, port, tls, timeout, server_hostname="localhost", rcvbuf=None, alpn=("http/1.1",)):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        # Before connect, so the window scale the kernel offers stays small.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    s.connect((host, port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if tls:
        s = tls_context(alpn).wrap_socket(s, server_hostname=server_hostname)
    return s


def connect_refused(host, port, timeout=1.0):
    """True when a TCP connect to host:port is refused (nothing listens)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((host, port))
        return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    finally:
        s.close()


def raw_request(host, port, data, tls=False, timeout=5.0, idle_timeout=None,
                half_close=False, server_hostname="localhost"):
    """Sends `data` exactly (bytes, or a list of bytes pieces sent one by one)
    and returns every byte received until the peer closes, `timeout` seconds
    pass in all, or (when given) `idle_timeout` seconds pass without a byte.
    A connection reset ends the read like a close."""
    s = _connect(host, port, tls, timeout, server_hostname)
    out = bytearray()
    try:
        pieces = data if isinstance(data, (list, tuple)) else [data]
        try:
            for p in pieces:
                s.sendall(p)
            if half_close and not tls:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            s.settimeout(min(left, idle_timeout) if idle_timeout else left)
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except (ConnectionResetError, ssl.SSLError, OSError):
                break
            if not chunk:
                break
            out += chunk
    finally:
        try:
            s.close()
        except OSError:
            pass
    return bytes(out)


def status_of(raw):
    """Status code of the first response in raw bytes, or None."""
    if not raw.startswith(b"HTTP/"):
        return None
    try:
        return int(raw.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None


class IncompleteResponse(Exception):
    pass


def _parse_one(buf, pos, head_only=False, eof=True):
    """Parses one response at buf[pos:]. Returns (Response, newpos) or raises
    IncompleteResponse."""
    end = buf.find(b"\r\n\r\n", pos)
    if end < 0:
        raise IncompleteResponse("no complete head")
    head = buf[pos:end].decode("latin-1")
    version, status, reason, headers = _parse_head_block(head)
    p = end + 4
    resp = Response(status, reason, headers, b"", version)
    if head_only or status in (204, 304) or 100 <= status < 200:
        return resp, p
    te = ",".join(resp.header_all("transfer-encoding")).lower()
    cl = resp.header("content-length")
    if "chunked" in te:
        body = bytearray()
        while True:
            le = buf.find(b"\r\n", p)
            if le < 0:
                raise IncompleteResponse("no chunk size")
            size = int(buf[p:le].split(b";")[0].strip(), 16)
            p = le + 2
            if size == 0:
                # trailers
                while True:
                    le = buf.find(b"\r\n", p)
                    if le < 0:
                        raise IncompleteResponse("no trailer end")
                    line = buf[p:le]
                    p = le + 2
                    if not line:
                        break
                break
            if len(buf) < p + size + 2:
                raise IncompleteResponse("short chunk")
            body += buf[p:p + size]
            p += size + 2
        resp.body = bytes(body)
        return resp, p
    if cl is not None:
        n = int(cl)
        if len(buf) < p + n:
            raise IncompleteResponse("short body")
        resp.body = bytes(buf[p:p + n])
        return resp, p + n
    if not eof:
        raise IncompleteResponse("body until close")
    resp.body = bytes(buf[p:])
    return resp, len(buf)


def parse_responses(data, head_methods=()):
    """Splits raw bytes into a list of complete Responses (interim 1xx dropped).
    head_methods: for pipelined HEAD requests, the indexes whose response has no body.
    A trailing incomplete response is ignored."""
    out = []
    pos = 0
    idx = 0
    while pos < len(data):
        try:
            r, pos = _parse_one(data, pos, head_only=idx in head_methods)
        except (IncompleteResponse, ValueError, IndexError):
            break
        if 100 <= r.status < 200:
            continue
        out.append(r)
        idx += 1
    return out


class RawConnection:
    """A (TLS) socket driven step by step: send bytes, read responses, detect close."""

    def __init__(self, host, port, tls=False, timeout=10.0, rcvbuf=None,
                 server_hostname="localhost"):
        self.sock = _connect(host, port, tls, timeout, server_hostname, rcvbuf)
        self.timeout = timeout
        self.buf = bytearray()
        self.eof = False

    def send(self, data):
        self.sock.sendall(data)

    def _recv(self, timeout, n=262144):
        """Reads once into buf. Returns False on EOF/reset, None on timeout, True on data."""
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(n)
        except socket.timeout:
            return None
        except (ConnectionResetError, ssl.SSLError, OSError):
            self.eof = True
            return False
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def read_response(self, timeout=None, head_only=False):
        """Reads and returns the next complete response (1xx skipped).
        Raises IncompleteResponse on timeout or close before it is complete."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            try:
                r, pos = _parse_one(self.buf, 0, head_only=head_only, eof=self.eof)
                del self.buf[:pos]
                if 100 <= r.status < 200:
                    continue
                return r
            except IncompleteResponse:
                pass
            if self.eof:
                raise IncompleteResponse("connection closed; have %r" % bytes(self.buf[:300]))
            left = deadline - time.monotonic()
            if left <= 0:
                raise IncompleteResponse("timeout; have %r" % bytes(self.buf[:300]))
            self._recv(left)

    def read_some(self, n, timeout=None):
        """Reads up to n bytes (from the buffer first); b"" at EOF or timeout."""
        if not self.buf and not self.eof:
            self._recv(timeout or self.timeout, n)
        take = bytes(self.buf[:n])
        del self.buf[:n]
        return take

    def wait_closed(self, timeout):
        """Reads (and keeps in .buf) until the peer closes; True if it closed
        within timeout, False if still open."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._recv(left)
        return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
