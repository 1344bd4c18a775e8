"""HTTP/2 clients for the integration tests: python3-h2 (frame state, HPACK,
flow control) plus hand-built frames where h2 would refuse to misbehave.

- H2Client      one TLS (ALPN h2) or prior-knowledge cleartext connection
                driven by h2.connection.H2Connection with header validation
                and normalisation off, so any header list goes out as given
                (uppercase names, unknown or missing pseudo-headers,
                connection-specific fields). GOAWAY frames are recorded by the
                client itself and never shown to h2 (h2 refuses every frame
                after a GOAWAY, but a graceful GOAWAY lets streams finish).
                Reading happens only inside the client's methods: a test that
                stops calling them stops reading the socket.
- RawH2         a connection without any h2 state: the preface, then whatever
                bytes the test builds with frame()/headers_block(); it parses
                what comes back (GOAWAY, RST_STREAM, SETTINGS, responses).
- nghttp(...)   one run of the `nghttp` command-line client.

Both raise NotH2 when TLS negotiates anything but h2: against a server that
does not offer h2, a test fails saying so.

Every blocking call takes a timeout; nothing here waits forever.
"""

import collections
import hashlib
import socket
import ssl
import struct
import subprocess
import time

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import hpack

from client import HeaderLookup, _connect

__all__ = ["H2Client", "RawH2", "NotH2", "StreamResult", "frame", "headers_block", "nghttp",
           "NghttpResult", "DATA", "HEADERS", "PRIORITY", "RST_STREAM", "SETTINGS", "PUSH_PROMISE",
           "PING", "GOAWAY", "WINDOW_UPDATE", "CONTINUATION", "FLAG_END_STREAM", "FLAG_END_HEADERS",
           "FLAG_ACK", "ERR", "SETTING", "PREFACE", "MAX_WINDOW"]

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
FLAG_END_STREAM = 0x1
FLAG_ACK = 0x1
FLAG_END_HEADERS = 0x4
FLAG_PADDED = 0x8
FLAG_PRIORITY = 0x20

# RFC 9113 §7 error codes and §6.5.2 settings, by name.
ERR = {"NO_ERROR": 0x0, "PROTOCOL_ERROR": 0x1, "INTERNAL_ERROR": 0x2, "FLOW_CONTROL_ERROR": 0x3,
       "SETTINGS_TIMEOUT": 0x4, "STREAM_CLOSED": 0x5, "FRAME_SIZE_ERROR": 0x6,
       "REFUSED_STREAM": 0x7, "CANCEL": 0x8, "COMPRESSION_ERROR": 0x9, "CONNECT_ERROR": 0xA,
       "ENHANCE_YOUR_CALM": 0xB, "INADEQUATE_SECURITY": 0xC, "HTTP_1_1_REQUIRED": 0xD}
SETTING = {"HEADER_TABLE_SIZE": 0x1, "ENABLE_PUSH": 0x2, "MAX_CONCURRENT_STREAMS": 0x3,
           "INITIAL_WINDOW_SIZE": 0x4, "MAX_FRAME_SIZE": 0x5, "MAX_HEADER_LIST_SIZE": 0x6}

MAX_WINDOW = 2 ** 31 - 1


class NotH2(Exception):
    """TLS negotiated another protocol than h2 (or none)."""


def _tls_connect(host, port, tls, timeout, server_hostname, rcvbuf, alpn):
    """client._connect, then insists on h2 when h2 was offered; (socket, ALPN)."""
    s = _connect(host, port, tls, timeout, server_hostname, rcvbuf, alpn)
    if not tls:
        return s, None
    proto = s.selected_alpn_protocol()
    if "h2" in alpn and proto != "h2":
        s.close()
        raise NotH2("ALPN selected %r, not h2 (offered %r): the server does not speak HTTP/2 over TLS"
                    % (proto, list(alpn)))
    return s, proto


def _b(x):
    return x if isinstance(x, bytes) else str(x).encode("latin-1")


def _s(x):
    return x.decode("latin-1") if isinstance(x, bytes) else x


# --------------------------------------------------------------- raw frames
def frame(ftype, flags, stream_id, payload=b""):
    """The bytes of one frame (RFC 9113 §4.1)."""
    n = len(payload)
    return struct.pack("!BHBBI", (n >> 16) & 0xFF, n & 0xFFFF, ftype, flags,
                       stream_id & 0x7FFFFFFF) + payload


def settings_payload(values):
    """SETTINGS payload from {id or name: value}."""
    out = b""
    for k, v in values.items():
        out += struct.pack("!HI", SETTING.get(k, k) if isinstance(k, str) else k, v)
    return out


def headers_block(headers, huffman=False):
    """An HPACK block that leaves the decoder's dynamic table alone (static
    table or never-indexed literals only), so the same bytes may be sent any
    number of times. headers: (name, value) pairs sent exactly as given."""
    enc = hpack.Encoder()
    return enc.encode([hpack.NeverIndexedHeaderTuple(_b(k), _b(v)) for k, v in headers],
                      huffman=huffman)


def _parse_frames(buf):
    """Splits complete frames off the front of buf (a bytearray, consumed):
    [(type, flags, stream_id, payload)]."""
    out = []
    while len(buf) >= 9:
        n = (buf[0] << 16) | (buf[1] << 8) | buf[2]
        if len(buf) < 9 + n:
            break
        ftype, flags = buf[3], buf[4]
        sid = struct.unpack("!I", bytes(buf[5:9]))[0] & 0x7FFFFFFF
        out.append((ftype, flags, sid, bytes(buf[9:9 + n])))
        del buf[:9 + n]
    return out


def _goaway_of(payload):
    last, code = struct.unpack("!II", payload[:8])
    return last & 0x7FFFFFFF, code, payload[8:]


# ----------------------------------------------------------- stream results
class StreamResult(HeaderLookup):
    """One stream as the client saw it. The body is kept (`body`) unless the
    client was made with keep_bodies=False; `length` and `sha256` always."""

    def __init__(self, sid, keep_body=True):
        self.sid = sid
        self.status = None
        self.headers = []          # [(name, value)] of the final response, str
        self.informational = []    # 1xx heads
        self.trailers = []
        self.body = bytearray() if keep_body else None
        self.length = 0
        self._sha = hashlib.sha256()
        self.ended = False         # END_STREAM seen
        self.reset = None          # RST_STREAM error code from the server
        self.t_first = None        # monotonic time of the response head
        self.t_end = None

    @property
    def sha256(self):
        return self._sha.hexdigest()

    @property
    def done(self):
        return self.ended or self.reset is not None

    def __repr__(self):
        return ("StreamResult(sid=%d, status=%r, reset=%r, ended=%r, length=%d, headers=%r, body=%r)"
                % (self.sid, self.status, self.reset, self.ended, self.length, self.headers,
                   bytes(self.body[:200]) if self.body is not None else None))


# -------------------------------------------------------------------- H2Client
class H2Client:
    def __init__(self, host, port, tls=True, timeout=10.0, server_hostname="localhost",
                 alpn=("h2",), rcvbuf=None, settings=None, connection_window=None,
                 keep_bodies=True, authority=None):
        """Connects, sends the preface and SETTINGS (h2's defaults, updated by
        `settings`: {name or id: value}), and opens the connection window by
        `connection_window - 65535` when given. Does not wait for the server's
        SETTINGS: see wait_settings()."""
        self.host, self.port, self.tls = host, port, tls
        self.timeout = timeout
        self.authority = authority or "%s:%d" % (host, port)
        self.scheme = "https" if tls else "http"
        self.keep_bodies = keep_bodies
        self.sock, self.alpn = _tls_connect(host, port, tls, timeout, server_hostname, rcvbuf, alpn)
        cfg = h2.config.H2Configuration(client_side=True, header_encoding="latin-1",
                                        validate_outbound_headers=False,
                                        normalize_outbound_headers=False,
                                        validate_inbound_headers=False,
                                        normalize_inbound_headers=False)
        self.h2 = h2.connection.H2Connection(config=cfg)
        self.h2.initiate_connection()
        if settings:
            self.h2.update_settings({SETTING.get(k, k) if isinstance(k, str) else k: v
                                     for k, v in settings.items()})
        if connection_window and connection_window > 65535:
            self.h2.increment_flow_control_window(connection_window - 65535)
        self.streams = {}
        self.server_settings = None     # {id: value} of the server's first SETTINGS
        self.goaways = []               # [(last_stream_id, error_code, debug_data)]
        self.frames_in = collections.Counter()
        self.closed = False             # EOF or reset from the server
        self.protocol_error = None      # an h2 exception raised on what arrived
        self.hold = set()               # stream ids whose DATA is not acknowledged (no WINDOW_UPDATE)
        self._held = collections.Counter()
        self._inbuf = bytearray()
        self.flush()

    # -------------------------------------------------------------- output
    def flush(self):
        """Writes what h2 has queued; a write the peer does not drain within
        the timeout raises socket.timeout. Returns False when the connection
        is gone."""
        data = self.h2.data_to_send()
        if not data or self.closed:
            return not self.closed
        try:
            self.sock.settimeout(self.timeout)
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError) as e:
            self._mark_closed(e)
            return False

    def send_raw(self, data, timeout=None):
        """Bytes straight onto the connection (after what h2 has queued).
        Returns False when the peer closed or reset it."""
        self.flush()
        try:
            self.sock.settimeout(timeout or self.timeout)
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError) as e:
            if isinstance(e, socket.timeout):
                raise
            self._mark_closed(e)
            return False

    def _mark_closed(self, why=None):
        self.closed = True

    def request_headers(self, method="GET", path="/", headers=(), authority=None, scheme=None):
        """The usual request header list: pseudo-headers first, then headers."""
        out = [(":method", method), (":scheme", scheme or self.scheme),
               (":authority", authority or self.authority), (":path", path)]
        return out + [(k, v) for k, v in headers]

    def send_headers(self, headers, end_stream=True, sid=None):
        """Opens a stream with exactly this header list; returns its id."""
        if sid is None:
            sid = self.h2.get_next_available_stream_id()
        self.streams[sid] = StreamResult(sid, self.keep_bodies)
        self.h2.send_headers(sid, [(_b(k), _b(v)) for k, v in headers], end_stream=end_stream)
        self.flush()
        return sid

    def request(self, method="GET", path="/", headers=(), body=None, authority=None,
                end_stream=None):
        """Opens a stream (HEADERS, then the body when given, flow controlled);
        returns the stream id. end_stream (default: True) ends the request."""
        hs = self.request_headers(method, path, headers, authority)
        if body is None:
            return self.send_headers(hs, end_stream=True if end_stream is None else end_stream)
        sid = self.send_headers(hs, end_stream=False)
        self.send_data(sid, body, end_stream=True if end_stream is None else end_stream)
        return sid

    def send_data(self, sid, data, end_stream=True, timeout=None):
        """Sends data as the stream's and the connection's windows allow,
        reading (and handling) frames while it waits for WINDOW_UPDATE.
        Returns the number of bytes sent (less when the stream was reset or
        the connection ended)."""
        deadline = time.monotonic() + (timeout or max(self.timeout, 30))
        mv = memoryview(data)
        off = 0
        st = self.streams.get(sid)
        while True:
            if self.closed or (st is not None and st.reset is not None):
                return off
            try:
                window = self.h2.local_flow_control_window(sid)
            except (h2.exceptions.StreamClosedError, h2.exceptions.NoSuchStreamError,
                    h2.exceptions.ProtocolError):
                return off
            n = min(len(data) - off, window, self.h2.max_outbound_frame_size)
            if n > 0 or (off == len(data)):
                last = off + n == len(data)
                try:
                    self.h2.send_data(sid, bytes(mv[off:off + n]), end_stream=end_stream and last)
                except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                    return off
                off += n
                if not self.flush():
                    return off
                if last:
                    return off
                continue
            if time.monotonic() > deadline:
                raise socket.timeout("no window to send stream %d data (%d of %d sent)"
                                     % (sid, off, len(data)))
            self.pump(0.5)

    def end_stream(self, sid):
        self.h2.end_stream(sid)
        self.flush()

    def reset_stream(self, sid, code=ERR["CANCEL"]):
        self.h2.reset_stream(sid, error_code=code)
        self.flush()

    def ping(self, data=b"12345678"):
        self.h2.ping(data)
        self.flush()

    # --------------------------------------------------------------- input
    def pump(self, timeout):
        """Reads once (waiting up to timeout) and handles what arrived.
        Returns False on timeout or when the connection is closed."""
        if self.closed:
            return False
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data = self.sock.recv(256 * 1024)
        except socket.timeout:
            return False
        except ssl.SSLWantReadError:
            return False
        except (ConnectionResetError, ssl.SSLError, OSError) as e:
            self._mark_closed(e)
            return False
        if not data:
            self._mark_closed()
            return False
        self._inbuf += data
        for ftype, flags, sid, payload in _parse_frames(self._inbuf):
            self.frames_in[ftype] += 1
            if ftype == GOAWAY:
                self.goaways.append(_goaway_of(payload))
                continue
            if ftype == SETTINGS and not flags & FLAG_ACK and self.server_settings is None:
                self.server_settings = {}
                for i in range(0, len(payload) - 5, 6):
                    k, v = struct.unpack("!HI", payload[i:i + 6])
                    self.server_settings[k] = v
            if self.protocol_error is not None:
                continue
            try:
                events = self.h2.receive_data(frame(ftype, flags, sid, payload))
            except h2.exceptions.ProtocolError as e:
                # What the server sent broke the protocol as h2 sees it: kept
                # for the test to report; later frames are only counted.
                self.protocol_error = e
                continue
            for ev in events:
                self._event(ev)
        self.flush()
        return True

    def _stream(self, sid):
        st = self.streams.get(sid)
        if st is None:
            st = self.streams[sid] = StreamResult(sid, self.keep_bodies)
        return st

    def _event(self, ev):
        now = time.monotonic()
        if isinstance(ev, h2.events.ResponseReceived):
            st = self._stream(ev.stream_id)
            st.headers = [(_s(k), _s(v)) for k, v in ev.headers]
            for k, v in st.headers:
                if k == ":status":
                    st.status = int(v)
            st.t_first = now
        elif isinstance(ev, h2.events.InformationalResponseReceived):
            self._stream(ev.stream_id).informational.append([(_s(k), _s(v)) for k, v in ev.headers])
        elif isinstance(ev, h2.events.TrailersReceived):
            self._stream(ev.stream_id).trailers = [(_s(k), _s(v)) for k, v in ev.headers]
        elif isinstance(ev, h2.events.DataReceived):
            st = self._stream(ev.stream_id)
            st.length += len(ev.data)
            st._sha.update(ev.data)
            if st.body is not None:
                st.body += ev.data
            if ev.stream_id in self.hold:
                self._held[ev.stream_id] += ev.flow_controlled_length
            else:
                self._ack(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.StreamEnded):
            st = self._stream(ev.stream_id)
            st.ended = True
            st.t_end = now
        elif isinstance(ev, h2.events.StreamReset):
            st = self._stream(ev.stream_id)
            if ev.remote_reset:
                st.reset = int(ev.error_code)
            elif st.reset is None:
                st.reset = -1     # reset by this client (h2 did it on a protocol error)
            st.t_end = now

    def _ack(self, n, sid):
        try:
            self.h2.acknowledge_received_data(n, sid)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            pass

    def release(self, sid):
        """Stops holding sid: acknowledges what it received so far."""
        self.hold.discard(sid)
        n = self._held.pop(sid, 0)
        if n:
            self._ack(n, sid)
            self.flush()

    def wait(self, pred, timeout):
        """Reads until pred() is true, the connection closes, or timeout passes;
        returns pred()."""
        deadline = time.monotonic() + timeout
        while not pred():
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                break
            self.pump(min(left, 0.5))
        return pred()

    def response(self, sid, timeout=None):
        """The stream once it ended or was reset (or what there is of it when
        the connection closed or the timeout passed: check .done)."""
        st = self._stream(sid)
        self.wait(lambda: st.done, timeout or self.timeout)
        return st

    def responses(self, sids, timeout=None):
        sts = [self._stream(s) for s in sids]
        self.wait(lambda: all(st.done for st in sts), timeout or self.timeout)
        return sts

    def get(self, path, headers=(), timeout=None):
        return self.response(self.request("GET", path, headers), timeout)

    def wait_settings(self, timeout=None):
        """The server's first SETTINGS as {id: value}, or None."""
        self.wait(lambda: self.server_settings is not None, timeout or self.timeout)
        return self.server_settings

    def wait_goaway(self, timeout):
        self.wait(lambda: bool(self.goaways), timeout)
        return self.goaways[0] if self.goaways else None

    def wait_closed(self, timeout):
        """Reads until the server closes the connection: True if it did."""
        self.wait(lambda: self.closed, timeout)
        return self.closed

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------------- RawH2
class RawH2:
    """A connection where the test writes every byte after the preface.

    Incoming frames are parsed: `.goaways`, `.resets` {sid: code},
    `.responses` {sid: decoded header list}, `.data` {sid: bytes count},
    `.ended` (sids with END_STREAM), `.server_settings`, `.frames_in` (a
    Counter by type). The server's SETTINGS are acknowledged while reading
    (unless ack_settings=False), nothing else is answered, and no
    WINDOW_UPDATE is ever sent."""

    def __init__(self, host, port, tls=True, timeout=10.0, server_hostname="localhost",
                 settings=None, rcvbuf=None, ack_settings=True, preface=True):
        self.sock, self.alpn = _tls_connect(host, port, tls, timeout, server_hostname, rcvbuf,
                                            ("h2",))
        self.timeout = timeout
        self.ack_settings = ack_settings
        self.goaways = []
        self.resets = {}
        self.responses = {}
        self.data = collections.Counter()
        self.ended = set()
        self.server_settings = None
        self.frames_in = collections.Counter()
        self.closed = False
        self.send_failed = None       # the error that ended a send, if one did
        self.read_error = None        # the error that ended reading (a reset), if one did
        self._inbuf = bytearray()
        self._decoder = hpack.Decoder()
        self._block = {}              # sid -> header block being assembled
        self.decode_error = None
        if preface:
            self.send(PREFACE + frame(SETTINGS, 0, 0, settings_payload(settings or {})))

    def send(self, data, timeout=None):
        """Writes data; returns False (and records why) when the peer closed,
        reset, or did not take it within timeout."""
        if self.closed:
            return False
        try:
            self.sock.settimeout(timeout or self.timeout)
            self.sock.sendall(data)
            return True
        except socket.timeout as e:
            self.send_failed = e
            return False
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError) as e:
            self.send_failed = e
            self.closed = True
            return False

    def read(self, timeout):
        """Reads and parses what arrives within timeout (one recv at least
        when data is there). Returns False once the connection is closed."""
        if self.closed:
            return False
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            self.sock.settimeout(max(left, 0.001))
            try:
                chunk = self.sock.recv(256 * 1024)
            except (socket.timeout, ssl.SSLWantReadError):
                return True
            except (ConnectionResetError, ssl.SSLError, OSError) as e:
                self.read_error = e
                self.closed = True
                return False
            if not chunk:
                self.closed = True
                return False
            self._inbuf += chunk
            self._handle(_parse_frames(self._inbuf))
            if time.monotonic() >= deadline:
                return True

    def _handle(self, frames):
        for ftype, flags, sid, payload in frames:
            self.frames_in[ftype] += 1
            if ftype == SETTINGS and not flags & FLAG_ACK:
                if self.server_settings is None:
                    self.server_settings = {}
                    for i in range(0, len(payload) - 5, 6):
                        k, v = struct.unpack("!HI", payload[i:i + 6])
                        self.server_settings[k] = v
                if self.ack_settings:
                    self.send(frame(SETTINGS, FLAG_ACK, 0))
            elif ftype == GOAWAY:
                self.goaways.append(_goaway_of(payload))
            elif ftype == RST_STREAM:
                self.resets[sid] = struct.unpack("!I", payload[:4])[0]
            elif ftype in (HEADERS, CONTINUATION):
                if ftype == HEADERS:
                    p = payload
                    if flags & FLAG_PADDED:
                        pad = p[0]
                        p = p[1:len(p) - pad]
                    if flags & FLAG_PRIORITY:
                        p = p[5:]
                    self._block[sid] = p
                    if flags & FLAG_END_STREAM:
                        self.ended.add(sid)
                else:
                    self._block[sid] = self._block.get(sid, b"") + payload
                if flags & FLAG_END_HEADERS:
                    block = self._block.pop(sid, b"")
                    try:
                        hs = [(_s(k), _s(v)) for k, v in self._decoder.decode(block, raw=True)]
                    except Exception as e:   # HPACK state is lost: report, stop decoding
                        self.decode_error = e
                        hs = []
                    if sid not in self.responses or any(
                            k == ":status" and v.startswith("1") for k, v in self.responses[sid]):
                        self.responses[sid] = hs
            elif ftype == DATA:
                self.data[sid] += len(payload)
                if flags & FLAG_END_STREAM:
                    self.ended.add(sid)

    def status(self, sid):
        for k, v in self.responses.get(sid, []):
            if k == ":status":
                return int(v)
        return None

    def wait(self, pred, timeout):
        deadline = time.monotonic() + timeout
        while not pred():
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                break
            self.read(min(left, 0.2))
        return pred()

    def wait_closed(self, timeout):
        """Reads until the server closes (EOF or reset): True if it did."""
        self.wait(lambda: self.closed, timeout)
        return self.closed

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --------------------------------------------------------------------- nghttp
class NghttpResult:
    """One `nghttp` run: `returncode`, `body` (the response bodies nghttp
    wrote to stdout), `stderr`, and from its HAR log, per request in order,
    `entries` [{"status": int, "headers": [(name, value)],
    "request_headers": [(name, value)]}] (header names as nghttp reports
    them, lower case)."""

    def __init__(self, returncode, body, stderr, entries):
        self.returncode = returncode
        self.body = body
        self.stderr = stderr
        self.entries = entries

    @property
    def status(self):
        return self.entries[0]["status"] if self.entries else None

    def header(self, name, i=0):
        vs = self.header_all(name, i)
        return vs[0] if vs else None

    def header_all(self, name, i=0):
        if i >= len(self.entries):
            return []
        return [v for k, v in self.entries[i]["headers"] if k.lower() == name.lower()]

    def __repr__(self):
        return "NghttpResult(rc=%d, entries=%r, stderr=%r, body=%r)" % (
            self.returncode, self.entries, self.stderr[-500:], self.body[:200])


def nghttp(url, headers=(), data_file=None, timeout=30, extra=()):
    """Runs `nghttp` for url: the bodies come back in .body, the heads from
    nghttp's HAR output (--har). nghttp speaks only HTTP/2: over TLS it fails
    (non-zero exit) when the server does not negotiate h2."""
    import json
    import os
    import tempfile
    fd, har = tempfile.mkstemp(prefix="sag-nghttp-", suffix=".har")
    os.close(fd)
    try:
        args = ["nghttp", "--no-dep", "-t", str(timeout), "--har", har]
        for h in headers:
            args += ["-H", h if isinstance(h, str) else "%s: %s" % h]
        if data_file:
            args += ["-d", data_file]
        args += list(extra)
        args.append(url)
        p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout + 15)
        entries = []
        try:
            with open(har) as f:
                log = json.load(f)
            for e in log.get("log", {}).get("entries", []):
                entries.append({
                    "status": e.get("response", {}).get("status"),
                    "headers": [(h["name"], h["value"])
                                for h in e.get("response", {}).get("headers", [])],
                    "request_headers": [(h["name"], h["value"])
                                        for h in e.get("request", {}).get("headers", [])]})
        except (OSError, ValueError):
            pass
        return NghttpResult(p.returncode, p.stdout, p.stderr.decode("utf-8", "replace"), entries)
    finally:
        try:
            os.unlink(har)
        except OSError:
            pass
