"""A misbehaving HTTP/1.1 server for the integration tests (standard library only).

ScriptedServer(script) listens on 127.0.0.1 (see `.port`) with keep-alive and
answers each request with what `script(request)` returns: a list of steps, each
bytes (sent at once), a float (seconds to sleep), or None (close the
connection). `request` is a ScriptedRequest: method, target, headers (a dict of
lower-case names), body (bytes, by Content-Length only) and `rid`, the value of
the `id` query parameter ("" without one), and `index`, its position on its
connection (0 for the first). Every request is appended to `.requests`.

`ok(rid, body=b"")` builds a well-formed 200 naming the request id in
`X-Rid` and in its body, so a test can check that each response belongs to the
request that asked for it.
"""

import socket
import threading
import time
import urllib.parse

__all__ = ["ScriptedServer", "ok"]


def ok(rid, body=None, extra=b""):
    if body is None:
        body = b"for " + rid.encode()
    return (b"HTTP/1.1 200 OK\r\nX-Rid: %s\r\nContent-Length: %d\r\n%s\r\n" % (rid.encode(), len(body), extra)
            + body)


class ScriptedRequest:
    def __init__(self, method, target, headers, body):
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(target).query)
        self.rid = q.get("id", [""])[0]


class ScriptedServer:
    def __init__(self, script, name="scripted"):
        self.name = name
        self.script = script
        self.requests = []
        self._lock = threading.Lock()
        self._conns = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(128)
        self.port = self._sock.getsockname()[1]
        self._stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self._stopped:
            try:
                c, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                self._conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        buf = b""
        index = 0
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    d = c.recv(65536)
                    if not d:
                        return
                    buf += d
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    n, _, v = line.partition(":")
                    headers[n.strip().lower()] = v.strip()
                length = int(headers.get("content-length", "0") or 0)
                while len(buf) < length:
                    d = c.recv(65536)
                    if not d:
                        return
                    buf += d
                body, buf = buf[:length], buf[length:]
                req = ScriptedRequest(method, target, headers, body)
                req.index = index
                index += 1
                with self._lock:
                    self.requests.append(req)
                for step in self.script(req):
                    if step is None:
                        return
                    if isinstance(step, (int, float)):
                        time.sleep(step)
                    else:
                        c.sendall(step)
        except OSError:
            return
        finally:
            try:
                c.close()
            except OSError:
                pass

    def stop(self):
        self._stopped = True
        try:
            self._sock.close()
        except OSError:
            pass
        with self._lock:
            conns, self._conns = self._conns, []
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
                c.close()
            except OSError:
                pass
