"""A peer on the Redis address that sends a reply past the gateway's limits
(issue 16, defect 2): `*2147483000` (hiredis would allocate 17 GB of
element pointers and free them one by one, a core for ~40 s per reply), or
`$2147483000` followed by an endless stream of bytes (hiredis would buffer
it all). The gateway, with `affinity_store: {type: redis}` pointing at such
a fake Redis, must refuse the reply like a lost connection (one log line
with the reason, reconnect with backoff), keep serving requests from its
local copy at full speed, use little CPU and memory, and stop on SIGTERM
within timeouts.shutdown.
"""

import os
import signal
import socket
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from harness import GatewayTestCase, basic_config, main  # noqa: E402
from gateway import rss_kib  # noqa: E402

NAMES = ("s1", "s2", "s3")
LEARN = {"learn": {"cookie": "JSESSIONID", "ttl": "30m"}}
SHUTDOWN_S = 3.0


class FakeRedis:
    """A listener on 127.0.0.1 that answers the first command of every
    connection with `head`, then sends filler bytes for as long as the peer
    takes them (stream=True), or holds the connection until the peer closes
    it. `connections` counts the accepted ones."""

    def __init__(self, head, stream):
        self.head = head
        self.stream = stream
        self.connections = 0
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.05)
        self.port = self._sock.getsockname()[1]
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def _accept(self):
        while not self._stop.is_set():
            try:
                c, _ = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            t = threading.Thread(target=self._serve, args=(c,), daemon=True)
            self._threads.append(t)
            t.start()

    def _serve(self, c):
        c.settimeout(0.05)   # so that close() is seen
        filler = b"x" * 65536
        try:
            while not self._stop.is_set():
                try:
                    if not c.recv(4096):
                        return
                    break
                except socket.timeout:
                    continue
            c.sendall(self.head)
            while not self._stop.is_set():
                try:
                    if self.stream:
                        c.send(filler)
                    elif not c.recv(4096):
                        return
                except socket.timeout:
                    continue
        except OSError:
            return      # the gateway dropped the connection
        finally:
            c.close()

    def close(self):
        self._stop.set()
        for t in list(self._threads):
            t.join(5)
        self._sock.close()


def cpu_seconds(pid):
    """utime + stime of process pid, in seconds (/proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM for pid %d" % pid)


class BadRepliesTest(GatewayTestCase):
    def check(self, head, stream, reason):
        fake = FakeRedis(head, stream)
        self.addCleanup(fake.close)
        s = self.servers(*NAMES)
        cfg = basic_config(s, tls=False, persistence=LEARN,
                           affinity_store={"type": "redis", "redis": {"address": fake.address}},
                           timeouts={"shutdown": "%ds" % SHUTDOWN_S})
        gw = self.gateway(cfg)
        pid = gw.pid

        # Requests are served from the local copy, fast, while the gateway
        # keeps trying Redis in the background.
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        owners, slowest, n = {}, 0.0, 0
        while time.monotonic() - t0 < 3.0:
            session = "s-%d" % (n % 10)
            r0 = time.monotonic()
            if session not in owners:
                r = self.fresh_get(gw, "http", "/setcookie?" + urllib.parse.urlencode(
                    {"name": "JSESSIONID", "value": session}))
                self.assertStatus(r, 200, gw)
                owners[session] = r.header("x-server")
            else:
                r = self.fresh_get(gw, "http", "/", headers=[("Cookie", "JSESSIONID=" + session)])
                self.assertStatus(r, 200, gw)
                self.assertEqual(r.header("x-server"), owners[session], "a learned session moved")
            slowest = max(slowest, time.monotonic() - r0)
            n += 1
            time.sleep(0.02)
        elapsed = time.monotonic() - t0
        cpu = cpu_seconds(pid) - cpu0
        self.assertLess(slowest, 0.5, "the slowest of %d requests took %.3f s" % (n, slowest))
        self.assertLess(cpu, 0.3 * elapsed, "gateway CPU: %.2f s over %.2f s (%d requests)\n%s"
                        % (cpu, elapsed, n, gw.describe()))
        growth_mib = (peak_rss_kib(pid) - rss_kib(pid)) / 1024.0
        self.assertLess(growth_mib, 100, "peak RSS %.0f MiB above the current one" % growth_mib)
        self.assertGreaterEqual(fake.connections, 3, "no reconnection attempts")

        # The failure is logged once, with its reason.
        err = gw.stderr()
        lines = [l for l in err.splitlines() if "redis: cannot connect to " + fake.address in l]
        self.assertEqual(len(lines), 1, err)
        self.assertIn("reply refused: ", lines[0])
        self.assertIn(reason, lines[0])

        t1 = time.monotonic()
        rc = gw.stop(signal.SIGTERM, timeout=15)
        took = time.monotonic() - t1
        self.assertEqual(rc, 0, gw.describe())
        self.assertLess(took, SHUTDOWN_S, "SIGTERM took %.2f s" % took)

    def test_huge_array_reply(self):
        self.check(b"*2147483000\r\n", False, "array of 2147483000 elements")

    def test_huge_bulk_reply_then_endless_bytes(self):
        self.check(b"$2147483000\r\n", True, "bulk string of 2147483000 bytes")


if __name__ == "__main__":
    main()
