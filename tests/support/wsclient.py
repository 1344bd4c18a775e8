"""A small WebSocket (RFC 6455) client for the integration tests (standard library only).

    ws = WsClient(LOCAL, port, tls=True, headers=[("Cookie", "SRV=...")])
    ws.response            # the handshake's Response (101 expected; any status is kept)
    ws.send_text("hi"); ws.recv_message()     # -> (opcode, payload)
    ws.close(1000); ws.wait_eof(5)

Frames are written by hand (client frames masked, as RFC 6455 §5.3 requires)
over the RawConnection of client.py, so a test sees exactly what came back.
WsClient does not raise when the handshake is refused: tests assert on
`.response.status` (and `.upgraded`) themselves.
"""

import base64
import hashlib
import os
import socket
import ssl
import struct
import threading
import time

from client import RawConnection, Response, _parse_head_block
from fake_server import ws_accept, ws_mask

__all__ = ["WsClient", "WsClosed", "OP_CONT", "OP_TEXT", "OP_BINARY", "OP_CLOSE", "OP_PING",
           "OP_PONG"]

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class WsClosed(Exception):
    """The connection ended (EOF or reset) before what was being read arrived."""


class WsClient:
    def __init__(self, host, port, tls=False, path="/ws", headers=(), timeout=10.0,
                 host_header=None):
        """Connects and sends the upgrade request; the response head is read
        before returning (`.response`). headers: extra (name, value) pairs."""
        self.conn = RawConnection(host, port, tls=tls, timeout=timeout)
        self.timeout = timeout
        self.key = base64.b64encode(os.urandom(16)).decode()
        lines = ["GET %s HTTP/1.1" % path,
                 "Host: %s" % (host_header or "%s:%d" % (host, port)),
                 "Upgrade: websocket", "Connection: Upgrade",
                 "Sec-WebSocket-Key: %s" % self.key, "Sec-WebSocket-Version: 13"]
        lines += ["%s: %s" % kv for kv in headers]
        self.conn.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        self._send_lock = threading.Lock()
        self._pending_control = []
        self.response = self._read_head(timeout)

    def _read_head(self, timeout):
        # Not RawConnection.read_response: it skips 1xx heads, 101 included.
        deadline = time.monotonic() + timeout
        while True:
            end = self.conn.buf.find(b"\r\n\r\n")
            if end >= 0:
                head = bytes(self.conn.buf[:end]).decode("latin-1")
                del self.conn.buf[:end + 4]
                version, status, reason, headers = _parse_head_block(head)
                return Response(status, reason, headers, b"", version)
            left = deadline - time.monotonic()
            if self.conn.eof or left <= 0:
                have = bytes(self.conn.buf[:300])
                self.conn.close()
                raise WsClosed("no handshake response (%s); have %r"
                               % ("closed" if self.conn.eof else "timeout", have))
            self.conn._recv(left)

    @property
    def upgraded(self):
        """True when the handshake is a 101 with the right Sec-WebSocket-Accept."""
        r = self.response
        return (r.status == 101 and (r.header("upgrade") or "").lower() == "websocket"
                and r.header("sec-websocket-accept") == ws_accept(self.key))

    @property
    def sock(self):
        return self.conn.sock

    # ---------------------------------------------------------------- sending
    def send_frame(self, opcode, payload=b"", fin=True, mask=True, piece=1 << 20, drain=False):
        """One frame; a large payload is masked and written in pieces (the
        frame is still one frame). drain: between pieces, what has arrived
        is read into the buffer (for recv_* later), so a large echo cannot
        deadlock without a second thread (an SSL socket must not be read and
        written from two threads at once)."""
        if isinstance(payload, str):
            payload = payload.encode()
        n = len(payload)
        b0 = (0x80 if fin else 0) | opcode
        mbit = 0x80 if mask else 0
        if n < 126:
            head = struct.pack("!BB", b0, mbit | n)
        elif n < 65536:
            head = struct.pack("!BBH", b0, mbit | 126, n)
        else:
            head = struct.pack("!BBQ", b0, mbit | 127, n)
        key = os.urandom(4) if mask else b""
        with self._send_lock:
            self.conn.sock.settimeout(self.timeout)
            self.conn.sock.sendall(head + key)
            mv = memoryview(payload)
            for off in range(0, n, piece):
                chunk = bytes(mv[off:off + piece])
                self.conn.sock.settimeout(self.timeout)
                self.conn.sock.sendall(ws_mask(chunk, key, off) if mask else chunk)
                if drain:
                    self._drain()

    def _drain(self):
        """Reads whatever is already there into the buffer, without waiting."""
        for _ in range(256):
            if self.conn.eof or not self.conn._recv(0.0005):
                return

    def send_text(self, text):
        self.send_frame(OP_TEXT, text)

    def send_binary(self, data, drain=False):
        self.send_frame(OP_BINARY, data, piece=(64 * 1024 if drain else 1 << 20), drain=drain)

    def ping(self, payload=b"p"):
        self.send_frame(OP_PING, payload)

    def close(self, code=1000, reason=b""):
        """Sends a close frame (does not wait for the answer: see recv_frame/wait_eof)."""
        self.send_frame(OP_CLOSE, struct.pack("!H", code) + reason)

    # -------------------------------------------------------------- receiving
    def _need(self, n, deadline):
        while len(self.conn.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("timed out waiting for %d bytes (have %d)"
                                     % (n, len(self.conn.buf)))
            if self.conn.eof:
                raise WsClosed("connection closed with %d of %d bytes" % (len(self.conn.buf), n))
            self.conn._recv(left)

    def _take(self, n):
        out = bytes(self.conn.buf[:n])
        del self.conn.buf[:n]
        return out

    def recv_head(self, timeout=None):
        """Reads a frame head: (fin, opcode, length, mask_key or None)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        self._need(2, deadline)
        b0, b1 = self._take(2)
        n = b1 & 0x7F
        if n == 126:
            self._need(2, deadline)
            n = struct.unpack("!H", self._take(2))[0]
        elif n == 127:
            self._need(8, deadline)
            n = struct.unpack("!Q", self._take(8))[0]
        key = None
        if b1 & 0x80:
            self._need(4, deadline)
            key = self._take(4)
        return bool(b0 & 0x80), b0 & 0x0F, n, key

    def recv_payload(self, n, sink, timeout=None, key=None):
        """Passes exactly n payload bytes to sink(bytes) as they arrive."""
        deadline = time.monotonic() + (timeout or self.timeout)
        off = 0
        while off < n:
            if not self.conn.buf:
                self._need(1, deadline)
            take = min(n - off, len(self.conn.buf))
            piece = self._take(take)
            sink(ws_mask(piece, key, off) if key else piece)
            off += take

    def recv_frame(self, timeout=None):
        """(fin, opcode, payload, masked) of the next frame."""
        fin, op, n, key = self.recv_head(timeout)
        parts = []
        self.recv_payload(n, parts.append, timeout, key)
        return fin, op, b"".join(parts), key is not None

    def recv_message(self, timeout=None, skip_pongs=True, hash_only=False):
        """(opcode, payload) of the next whole message (continuations joined);
        a control frame counts as a message of its own (pongs skipped unless
        asked); one that arrives inside a fragmented message is returned by
        the next call. hash_only: payload is (length, sha256 hex) instead of
        bytes."""
        while self._pending_control:
            op, body = self._pending_control.pop(0)
            if not (op == OP_PONG and skip_pongs):
                return op, body
        timeout = timeout or self.timeout
        deadline = time.monotonic() + timeout
        first_op = None
        h = hashlib.sha256()
        parts = []
        length = 0
        while True:
            fin, op, n, key = self.recv_head(max(0.01, deadline - time.monotonic()))
            if op >= 8:
                body = []
                self.recv_payload(n, body.append, max(0.01, deadline - time.monotonic()), key)
                if first_op is not None:
                    self._pending_control.append((op, b"".join(body)))
                    continue
                if op == OP_PONG and skip_pongs:
                    continue
                return op, b"".join(body)
            if first_op is None:
                first_op = op

            def sink(b):
                if hash_only:
                    h.update(b)
                else:
                    parts.append(b)

            self.recv_payload(n, sink, max(0.01, deadline - time.monotonic()), key)
            length += n
            if fin:
                return first_op, ((length, h.hexdigest()) if hash_only else b"".join(parts))

    def wait_eof(self, timeout):
        """Reads (and keeps) bytes until the peer closes or resets: True if it
        did within timeout."""
        return self.conn.wait_closed(timeout)

    def abort(self):
        """Closes the TCP connection without a close frame."""
        try:
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        except (OSError, ssl.SSLError):
            pass
        self.conn.close()

    def shutdown(self):
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.conn.close()
