"""TCP mode (SPEC §8): a `mode: tcp` listener relays bytes to a server of its
tcp backend, sticky on the client address. Real redis-server processes on
free ports for the Redis traffic; small TCP servers of the test's own that
say their name first (the server speaks first, as Redis-like protocols may)
and then echo, for stickiness, weights, half-close and byte counts."""

import hashlib
import os
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from admin import Admin, parse_metrics, value  # noqa: E402
from gateway import make_cert  # noqa: E402
from harness import LOCAL, GatewayTestCase, main, wait_until  # noqa: E402
from redis import RedisServer  # noqa: E402

CLIENTS = ["127.0.0.%d" % i for i in range(2, 10)]


class NamedEcho:
    """A TCP server that sends "NAME\\n" on accept, then echoes until EOF,
    then closes. `connections` counts accepted connections."""

    def __init__(self, name):
        self.name = name
        self.connections = 0
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((LOCAL, 0))
        self.port = self.sock.getsockname()[1]
        self.sock.listen(256)
        self.running = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while self.running:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        try:
            c.sendall(self.name.encode() + b"\n")
            while True:
                data = c.recv(65536)
                if not data:
                    break
                c.sendall(data)
        except OSError:
            pass
        finally:
            c.close()

    def stop(self):
        self.running = False
        try:
            # Wakes the thread blocked in accept(): a close alone would leave
            # the kernel socket listening until accept() returns.
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def restart(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((LOCAL, self.port))
        self.sock.listen(256)
        self.running = True
        threading.Thread(target=self._accept, daemon=True).start()


class TlsClient:
    """A TLS client over a memory BIO, so it can half-close: send its
    close_notify and FIN, then go on reading until the gateway's."""

    def __init__(self, port, alpn=None, timeout=10):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        if alpn:
            ctx.set_alpn_protocols(alpn)
        self.sock = socket.create_connection((LOCAL, port), timeout=timeout)
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.incoming, self.outgoing, server_side=False)
        self._io(self.tls.do_handshake)

    def _flush(self):
        data = self.outgoing.read()
        if data:
            self.sock.sendall(data)

    def _io(self, op, *args):
        while True:
            try:
                r = op(*args)
                self._flush()
                return r
            except ssl.SSLWantReadError:
                self._flush()
                data = self.sock.recv(65536)
                if not data:
                    self.incoming.write_eof()
                else:
                    self.incoming.write(data)

    def send(self, data):
        for i in range(0, len(data), 16384):
            self._io(self.tls.write, data[i:i + 16384])

    def recv(self):
        """Some bytes, or b"" after the gateway's close_notify."""
        try:
            return self._io(self.tls.read, 65536)
        except ssl.SSLZeroReturnError:
            return b""

    def half_close(self):
        try:
            self.tls.unwrap()
        except ssl.SSLWantReadError:
            pass   # our close_notify is out; the gateway's comes later
        self._flush()
        self.sock.shutdown(socket.SHUT_WR)

    def close(self):
        self.sock.close()


class ProxyV2Server:
    """Reads a PROXY v2 header first, answers "PROXY SRC_IP SRC_PORT DST_PORT\n"
    (or "LOCAL\n"), then closes. `seen` lists the answers."""

    def __init__(self):
        self.seen = []
        self.sock = socket.socket()
        self.sock.bind((LOCAL, 0))
        self.port = self.sock.getsockname()[1]
        self.sock.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        try:
            f = c.makefile("rb")
            head = f.read(16)
            if len(head) < 16 or head[:12] != b"\r\n\r\n\x00\r\nQUIT\n":
                return
            body = f.read(int.from_bytes(head[14:16], "big"))
            if head[12] == 0x20:
                answer = "LOCAL"
            elif head[13] == 0x11:
                answer = "PROXY %s %d %d" % (socket.inet_ntoa(body[0:4]), int.from_bytes(body[8:10], "big"),
                                             int.from_bytes(body[10:12], "big"))
            else:
                answer = "PROXY6"
            self.seen.append(answer)
            c.sendall(answer.encode() + b"\n")
        except OSError:
            pass
        finally:
            c.close()

    def stop(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def tcp_config(servers, balance="roundrobin", source=True, idle=None, retries=2, log=None,
               admin=False):
    backend = {"name": "pool", "mode": "tcp", "balance": balance,
               "servers": [{"name": n, "address": "127.0.0.1:%d" % p, "weight": w}
                           for n, p, w in servers],
               "health_check": {"type": "none"}, "retries": retries}
    if source:
        backend["persistence"] = {"source": {"ttl": "30m"}}
    if idle:
        backend["timeouts"] = {"idle": idle}
    cfg = {"workers": 2, "listeners": [{"name": "tcp", "bind": "127.0.0.1:0", "mode": "tcp",
                                        "backend": "pool"}],
           "backends": [backend]}
    if log:
        cfg["access_log"] = {"path": log}
    if admin:
        cfg["admin"] = {"bind": "127.0.0.1:0"}
    return cfg


def hello(port, source=None, timeout=5):
    """Connects (from `source`), returns (socket, the server's name)."""
    s = socket.create_connection((LOCAL, port), timeout=timeout,
                                 source_address=(source, 0) if source else None)
    f = s.makefile("rb")
    name = f.readline().decode().strip()
    return s, name, f


def log_has(path, text):
    if not os.path.exists(path):
        return False
    with open(path) as f:
        return text in f.read()


def name_from(port, source=None):
    s, name, f = hello(port, source)
    f.close()
    s.close()
    return name


class TcpTest(GatewayTestCase):
    def echoes(self, *names):
        out = []
        for n in names:
            e = NamedEcho(n)
            self.addCleanup(e.stop)
            out.append(e)
        return out

    def test_redis_set_get_and_200_pipelined_commands(self):
        r = RedisServer()
        r.start()
        self.addCleanup(r.close)
        gw = self.gateway(tcp_config([("r1", r.port, 100)]))
        port = str(gw.port("tcp"))
        p = subprocess.run(["redis-cli", "-h", LOCAL, "-p", port, "SET", "k", "v1"],
                           stdout=subprocess.PIPE, timeout=10)
        self.assertEqual(p.stdout.strip(), b"OK")
        p = subprocess.run(["redis-cli", "-h", LOCAL, "-p", port, "GET", "k"],
                           stdout=subprocess.PIPE, timeout=10)
        self.assertEqual(p.stdout.strip(), b"v1")
        cmds = "".join("SET key%d value%d\nGET key%d\n" % (i, i, i) for i in range(100)).encode()
        p = subprocess.run(["redis-cli", "-h", LOCAL, "-p", port, "--pipe"], input=cmds,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20)
        self.assertIn(b"errors: 0, replies: 200", p.stdout)
        self.assertEqual(r.command("GET", "key99"), "value99")

    def test_new_connections_follow_the_master_when_master_and_replica_swap(self):
        r1 = RedisServer(password="pw")
        r1.start()
        self.addCleanup(r1.close)
        r2 = RedisServer(replicaof=r1, password="pw")
        r2.start()
        self.addCleanup(r2.close)
        pw_file = os.path.join(self.gateway_dir(), "redis-password")
        with open(pw_file, "w") as f:
            f.write("pw\n")
        cfg = tcp_config([("r1", r1.port, 100), ("r2", r2.port, 100)], source=False, admin=True)
        cfg["backends"][0]["health_check"] = {"type": "redis", "role": "master", "password_file": pw_file,
                                              "interval": "200ms", "timeout": "500ms", "rise": 1, "fall": 1}
        gw = self.gateway(cfg)

        def answering_port():
            p = subprocess.run(["redis-cli", "-h", LOCAL, "-p", str(gw.port("tcp")), "-a", "pw",
                                "--no-auth-warning", "CONFIG", "GET", "port"],
                               stdout=subprocess.PIPE, timeout=10)
            return int(p.stdout.split()[-1])

        a = Admin(gw)
        self.addCleanup(a.conn.close)
        self.assertTrue(wait_until(lambda: a.json("/api/backends/pool/servers/r2")["health"] == "down"))
        self.assertIn("role slave, want master", a.json("/api/backends/pool/servers/r2")["last_check"])
        self.assertEqual({answering_port() for _ in range(6)}, {r1.port})
        # The swap: r2 becomes the master, r1 its replica.
        r2.command("REPLICAOF", "NO", "ONE")
        r1.command("REPLICAOF", "127.0.0.1", str(r2.port))
        t0 = time.monotonic()
        self.assertTrue(wait_until(lambda: a.json("/api/backends/pool/servers/r1")["health"] == "down"
                                   and a.json("/api/backends/pool/servers/r2")["health"] == "up",
                                   timeout=5))
        took = time.monotonic() - t0
        self.assertLess(took, (1 + 1) * 0.2 + 0.5)  # (fall + 1) x interval, and a margin
        self.assertEqual({answering_port() for _ in range(6)}, {r2.port})

    def test_8_mib_echoed_with_half_close_and_logged_with_exact_byte_counts(self):
        e, = self.echoes("e1")
        log = os.path.join(self.gateway_dir(), "access.log")
        gw = self.gateway(tcp_config([("e1", e.port, 100)], log=log, admin=True))
        payload = os.urandom(8 * 1024 * 1024)
        s, name, f = hello(gw.port("tcp"))
        self.assertEqual(name, "e1")
        got = []

        def read_all():
            while True:
                b = f.read1(1 << 20)
                if not b:
                    break
                got.append(b)
        t = threading.Thread(target=read_all)
        t.start()
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)   # the half-close reaches the server, which still answers
        t.join(30)
        f.close()
        s.close()
        echoed = b"".join(got)
        self.assertEqual(hashlib.sha256(echoed).hexdigest(), hashlib.sha256(payload).hexdigest())
        self.assertTrue(wait_until(lambda: log_has(log, str(len(payload) + 3))))
        with open(log) as lf:
            line = [l for l in lf.read().splitlines() if str(len(payload)) in l][-1]
        fields = line.split()
        # CLIENT:PORT [DATE] LISTENER BACKEND/SERVER Tw/Tc/Tt BYTES_IN BYTES_OUT PERSIST TERMINATION "TCP"
        self.assertEqual(fields[2:4], ["tcp", "pool/e1"], line)
        self.assertRegex(fields[4], r"^0/\d+/\d+$", line)
        self.assertEqual(int(fields[5]), len(payload), line)
        self.assertEqual(int(fields[6]), len(payload) + 3, line)   # "e1\n" first
        # (The harness's readiness probe made this address's entry already.)
        self.assertIn(fields[7], ("new", "source-hit"), line)
        self.assertEqual(fields[8:], ["client-close", '"TCP"'], line)
        a = Admin(gw)
        self.addCleanup(a.conn.close)
        m = parse_metrics(a.get("/metrics").text)
        # Besides this one, the harness's readiness probe connected (and
        # got "e1\n" too).
        n = value(m, "gateway_tcp_connections_total", backend="pool", server="e1")
        self.assertGreaterEqual(n, 1)
        self.assertEqual(value(m, "gateway_tcp_bytes_total", backend="pool", direction="in"), len(payload))
        self.assertEqual(value(m, "gateway_tcp_bytes_total", backend="pool", direction="out"),
                         len(payload) + 3 * n)
        srv = a.json("/api/backends/pool/servers/e1")
        self.assertEqual((srv["requests"], srv["active"]), (n, 0), srv)

    def gateway_dir(self):
        return self.temp_dir("sag-tcp-")

    def test_each_client_address_sticks_to_one_server(self):
        es = self.echoes("e1", "e2", "e3")
        gw = self.gateway(tcp_config([(e.name, e.port, 100) for e in es]))
        owners = {}
        for ip in CLIENTS:
            owners[ip] = name_from(gw.port("tcp"), ip)
        self.assertEqual(len(set(owners.values())), 3, owners)
        for _ in range(3):
            for ip in CLIENTS:
                self.assertEqual(name_from(gw.port("tcp"), ip), owners[ip], ip)

    def test_weights_share_new_connections(self):
        es = self.echoes("a", "b", "c")
        gw = self.gateway(tcp_config([("a", es[0].port, 50), ("b", es[1].port, 35),
                                      ("c", es[2].port, 15)], source=False))
        counts = {"a": 0, "b": 0, "c": 0}
        for _ in range(200):
            counts[name_from(gw.port("tcp"))] += 1
        self.assertAlmostEqual(counts["a"], 100, delta=8)
        self.assertAlmostEqual(counts["b"], 70, delta=8)
        self.assertAlmostEqual(counts["c"], 30, delta=8)

    def test_a_dead_servers_clients_move_once_and_stay_after_it_returns(self):
        es = self.echoes("e1", "e2", "e3")
        gw = self.gateway(tcp_config([(e.name, e.port, 100) for e in es]))
        owners = {ip: name_from(gw.port("tcp"), ip) for ip in CLIENTS}
        victim = es[0] if "e1" in owners.values() else es[1]
        victim.stop()
        moved = {}
        for ip, owner in owners.items():
            now = name_from(gw.port("tcp"), ip)
            if owner == victim.name:
                self.assertNotEqual(now, victim.name)
                moved[ip] = now
            else:
                self.assertEqual(now, owner, ip)
        self.assertTrue(moved)
        victim.restart()
        for ip, now in moved.items():
            self.assertEqual(name_from(gw.port("tcp"), ip), now, "the redispatch stays")

    def test_proxy_v2_tells_the_server_who_the_client_is(self):
        p = ProxyV2Server()
        self.addCleanup(p.stop)
        cfg = tcp_config([("p1", p.port, 100)])
        cfg["backends"][0]["proxy_protocol"] = "v2"
        cfg["backends"][0]["health_check"] = {"type": "tcp", "interval": "200ms"}
        gw = self.gateway(cfg)
        s = socket.create_connection((LOCAL, gw.port("tcp")), timeout=5, source_address=("127.0.0.7", 0))
        client_port = s.getsockname()[1]
        answer = s.makefile("rb").readline().decode().strip()
        s.close()
        self.assertEqual(answer, "PROXY 127.0.0.7 %d %d" % (client_port, gw.port("tcp")))
        # Health checks say LOCAL.
        self.assertTrue(wait_until(lambda: "LOCAL" in p.seen), p.seen)

    def test_on_down_close_cuts_a_down_or_maint_servers_connections(self):
        es = self.echoes("e1", "e2")
        log = os.path.join(self.gateway_dir(), "access.log")
        cfg = tcp_config([(e.name, e.port, 100) for e in es], source=False, log=log, admin=True)
        cfg["backends"][0]["on_down"] = "close"
        cfg["backends"][0]["health_check"] = {"type": "tcp", "interval": "100ms", "fall": 1}
        gw = self.gateway(cfg)
        conns = {}
        while len(conns) < 2:
            s, name, f = hello(gw.port("tcp"))
            if name in conns:
                f.close()
                s.close()
                continue
            conns[name] = (s, f)
        # e1 goes down (its listener stops; the open connection stays up on its side).
        es[0].stop()
        s, f = conns["e1"]
        s.settimeout(5)
        t0 = time.monotonic()
        self.assertEqual(f.read1(100), b"", "cut by the gateway")
        self.assertLess(time.monotonic() - t0, 2)
        # e2 put in maint through the admin API: cut too.
        a = Admin(gw)
        self.addCleanup(a.conn.close)
        self.assertEqual(a.put("/api/backends/pool/servers/e2", {"state": "maint"}).status, 200)
        s2, f2 = conns["e2"]
        s2.settimeout(5)
        self.assertEqual(f2.read1(100), b"")
        for x in (f, s, f2, s2):
            x.close()
        self.assertTrue(wait_until(lambda: log_has(log, "server-down")))

    def test_on_down_keep_leaves_them(self):
        es = self.echoes("e1")
        cfg = tcp_config([("e1", es[0].port, 100)], source=False, admin=True)
        cfg["backends"][0]["health_check"] = {"type": "tcp", "interval": "100ms", "fall": 1}
        gw = self.gateway(cfg)
        s, name, f = hello(gw.port("tcp"))
        es[0].stop()
        a = Admin(gw)
        self.addCleanup(a.conn.close)
        self.assertTrue(wait_until(lambda: a.json("/api/backends/pool/servers/e1")["health"] == "down"))
        s.sendall(b"still here\n")
        self.assertEqual(f.readline(), b"still here\n")
        f.close()
        s.close()

    def test_idle_timeout_closes_a_quiet_connection(self):
        e, = self.echoes("e1")
        log = os.path.join(self.gateway_dir(), "access.log")
        gw = self.gateway(tcp_config([("e1", e.port, 100)], idle="1s", log=log))
        s, name, f = hello(gw.port("tcp"))
        t0 = time.monotonic()
        s.settimeout(5)
        self.assertEqual(f.read1(100), b"", "closed by the gateway")
        self.assertGreater(time.monotonic() - t0, 0.8)
        f.close()
        s.close()
        self.assertTrue(wait_until(lambda: log_has(log, " idle ")))

    def test_no_server_reachable_is_connect_failed(self):
        e, = self.echoes("e1")
        port = e.port
        e.stop()
        log = os.path.join(self.gateway_dir(), "access.log")
        gw = self.gateway(tcp_config([("e1", port, 100)], log=log, retries=1))
        s = socket.create_connection((LOCAL, gw.port("tcp")), timeout=5)
        self.assertEqual(s.recv(10), b"")
        s.close()
        self.assertTrue(wait_until(lambda: log_has(log, "connect-failed")))

    def tls_config(self, e, alpn=None, log=None):
        cfg = tcp_config([("e1", e.port, 100)], log=log)
        cfg["listeners"][0]["tls"] = {"certificates": make_cert()}
        if alpn:
            cfg["listeners"][0]["tls"]["alpn"] = alpn
        return cfg

    def test_tls_terminated_tcp_with_half_close_both_ways(self):
        e, = self.echoes("e1")
        log = os.path.join(self.gateway_dir(), "access.log")
        gw = self.gateway(self.tls_config(e, log=log))
        c = TlsClient(gw.port("tcp"), alpn=["redis"])
        self.addCleanup(c.close)
        self.assertIsNone(c.tls.selected_alpn_protocol(), "no ALPN unless tls.alpn is set")
        payload = os.urandom(3 * 1024 * 1024 + 7)
        got, have = [], 0
        # Lockstep (an SSL object is one thread's): each 64 KiB sent is read
        # back before the next, so no buffer on the way fills up.
        last = len(payload) - len(payload) % 65536
        for i in range(0, last, 65536):
            c.send(payload[i:i + 65536])
            while have < 3 + i + 65536:
                b = c.recv()
                self.assertTrue(b, "the echo ended early")
                got.append(b)
                have += len(b)
        c.send(payload[last:])
        c.half_close()    # close_notify and FIN: the server still answers...
        while True:       # ...and its FIN comes back as the gateway's close_notify
            b = c.recv()
            if not b:
                break
            got.append(b)
        echoed = b"".join(got)
        self.assertEqual(echoed[:3], b"e1\n")
        self.assertEqual(hashlib.sha256(echoed[3:]).hexdigest(), hashlib.sha256(payload).hexdigest())
        self.assertTrue(wait_until(lambda: log_has(log, " %d %d " % (len(payload), len(payload) + 3))))

    def test_tls_alpn_offers_what_tls_alpn_lists(self):
        e, = self.echoes("e1")
        gw = self.gateway(self.tls_config(e, alpn=["redis", "x-other"]))
        c = TlsClient(gw.port("tcp"), alpn=["x-other", "redis"])
        self.addCleanup(c.close)
        self.assertEqual(c.tls.selected_alpn_protocol(), "redis", "the server's preference")
        self.assertEqual(c.recv(), b"e1\n")
        c.send(b"ping")
        self.assertEqual(c.recv(), b"ping")

    def test_tls_handshake_that_never_comes_ends_within_timeouts_client(self):
        e, = self.echoes("e1")
        cfg = self.tls_config(e)
        cfg["timeouts"] = {"client": "1s"}
        gw = self.gateway(cfg)
        before = e.connections
        s = socket.create_connection((LOCAL, gw.port("tcp")), timeout=5)
        t0 = time.monotonic()
        self.assertEqual(s.recv(10), b"")
        self.assertLess(time.monotonic() - t0, 4)
        s.close()
        self.assertEqual(e.connections, before, "no server was connected for it")


if __name__ == "__main__":
    main()
