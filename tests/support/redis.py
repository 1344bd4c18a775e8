"""Real redis-server processes for the integration tests and benchmarks
(standard library only).

    r = RedisServer().start()                 # free port, no persistence
    r.command("SET", "k", "v"); r.command("GET", "k")   # -> "v"
    r.kill(); r.start()                       # gone, then back empty
    r.pause(); r.resume()                     # SIGSTOP / SIGCONT: slow, not gone
    replica = RedisServer(replicaof=r).start(); replica.wait_replication()
    s = Sentinel("mymaster", r).start(); s.wait_replicas(1)
    s.master_address()                        # ("127.0.0.1", port)
    affinity_key("sess-1")                    # the gateway's Redis key for a learned session
    with r.subscribe("gw:affinity") as sub: ...; sub.messages()

Each server runs in a temporary directory of its own, on 127.0.0.1, and
dies with the test process (PR_SET_PDEATHSIG, plus an atexit kill). A
missing redis-server raises (the tests fail; they never skip for it).
"""

import hashlib
import hmac
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading

from gateway import forget, free_port, spawn
from harness import wait_until

__all__ = ["RedisServer", "Sentinel", "RedisError", "redis_server_bin", "affinity_key", "siphash128"]

_MASK = (1 << 64) - 1


def _rotl(x, b):
    return ((x << b) | (x >> (64 - b))) & _MASK


def siphash128(key, data):
    """SipHash-2-4 with 128-bit output (the reference's 16 output bytes)."""
    k0, k1 = int.from_bytes(key[:8], "little"), int.from_bytes(key[8:16], "little")
    v = [0x736f6d6570736575 ^ k0, 0x646f72616e646f6d ^ k1 ^ 0xee,
         0x6c7967656e657261 ^ k0, 0x7465646279746573 ^ k1]

    def rounds(n):
        for _ in range(n):
            v[0] = (v[0] + v[1]) & _MASK
            v[1] = _rotl(v[1], 13) ^ v[0]
            v[0] = _rotl(v[0], 32)
            v[2] = (v[2] + v[3]) & _MASK
            v[3] = _rotl(v[3], 16) ^ v[2]
            v[0] = (v[0] + v[3]) & _MASK
            v[3] = _rotl(v[3], 21) ^ v[0]
            v[2] = (v[2] + v[1]) & _MASK
            v[1] = _rotl(v[1], 17) ^ v[2]
            v[2] = _rotl(v[2], 32)

    full = len(data) - len(data) % 8
    for i in range(0, full, 8):
        m = int.from_bytes(data[i:i + 8], "little")
        v[3] ^= m
        rounds(2)
        v[0] ^= m
    b = ((len(data) & 0xff) << 56) | int.from_bytes(data[full:], "little")
    v[3] ^= b
    rounds(2)
    v[0] ^= b
    v[2] ^= 0xee
    rounds(4)
    out = (v[0] ^ v[1] ^ v[2] ^ v[3]).to_bytes(8, "little")
    v[1] ^= 0xdd
    rounds(4)
    return out + (v[0] ^ v[1] ^ v[2] ^ v[3]).to_bytes(8, "little")


_BUILT_IN_SECRET = b"sag affinity-store: no key secret configured"
_PLAIN = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._~!$&'()+,;=@/-")


def _pct(part):
    return "".join(chr(c) if c in _PLAIN else "%%%02X" % c for c in part)


def affinity_key(value, kind="L", backend="app", secret=None, prefix="gw:"):
    """The Redis key a gateway stores an affinity entry under
    (affinity/store/redis_affinity_store.h), computed independently: kind "L" with
    a learned cookie value, "S" with b"4" + the masked IPv4 address bytes (or
    b"6" + 16 bytes); secret: the key_secret_file's first line (or the cookie
    secret used in its place), None for the built-in one."""
    as_bytes = (lambda x: x.encode() if isinstance(x, str) else bytes(x))
    secret = as_bytes(secret) if secret else _BUILT_IN_SECRET
    hash_key = hmac.new(secret, b"sag affinity-store key v1", hashlib.sha256).digest()[:16]
    raw = as_bytes(backend) + b"\0" + kind.encode() + b"\0" + as_bytes(value)
    return "%sa:%s:%s:%s" % (prefix, _pct(as_bytes(backend)), kind.lower(), siphash128(hash_key, raw).hex())


class RedisError(Exception):
    """An error reply (the message is Redis' text)."""


def redis_server_bin():
    b = shutil.which("redis-server")
    if b is None:
        raise AssertionError("redis-server is not installed (Debian package redis-server)")
    return b


def _encode(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, int):
            a = str(a)
        if isinstance(a, str):
            a = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def _read_reply(f):
    line = f.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError("connection closed by redis")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        return RedisError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        return data[:-2].decode("utf-8", "surrogateescape")
    if kind == b"*":
        n = int(rest)
        if n < 0:
            return None
        return [_read_reply(f) for _ in range(n)]
    raise ConnectionError("bad reply from redis: %r" % line)


class _Process:
    """What RedisServer and Sentinel share: one redis-server process."""

    def __init__(self, port=None, password=None):
        self.port = port or free_port()
        self.password = password
        self.dir = tempfile.mkdtemp(prefix="sag-redis-")
        self.proc = None

    # -------------------------------------------------------------- process
    def _args(self):
        raise NotImplementedError

    def start(self, timeout=10.0):
        """Starts (again, on the same port) and waits until PING answers."""
        if self.alive():
            return self
        self.proc = spawn([redis_server_bin()] + self._args(), cwd=self.dir,
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)

        def answers():
            if self.proc.poll() is not None:
                raise AssertionError("redis-server exited with %s; log:\n%s"
                                     % (self.proc.returncode, self.log()))
            try:
                return self.command("PING") == "PONG"
            except (OSError, ConnectionError, RedisError):
                return False

        if not wait_until(answers, timeout, interval=0.02):
            raise AssertionError("redis-server did not answer on port %d; log:\n%s"
                                 % (self.port, self.log()))
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """SIGKILL: gone at once, and its data with it (no persistence)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()    # SIGKILL ends a paused (SIGSTOPped) process too
            self.proc.wait(timeout=5)
        if self.proc is not None:
            forget(self.proc)

    stop = kill

    def restart(self, timeout=10.0):
        self.kill()
        return self.start(timeout)

    def pause(self):
        """SIGSTOP: connections stay open but nothing answers."""
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def close(self):
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start() if not self.alive() else self

    def __exit__(self, *exc):
        self.close()

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def log(self):
        try:
            with open(os.path.join(self.dir, "redis.log"), errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    # -------------------------------------------------------------- commands
    def command(self, *args, timeout=5.0):
        """One command on a fresh connection (AUTH first when a password is
        set). Returns str / int / None / list; raises RedisError on an error
        reply, OSError when nothing answers."""
        return self.pipeline([args], timeout=timeout)[0]

    def pipeline(self, commands, timeout=5.0):
        """Several commands on one connection, in order; their replies."""
        cmds = list(commands)
        if self.password:
            cmds.insert(0, ("AUTH", self.password))
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            s.sendall(b"".join(_encode(c) for c in cmds))
            f = s.makefile("rb")
            replies = [_read_reply(f) for _ in cmds]
        if self.password:
            replies = replies[1:]
        for r in replies:
            if isinstance(r, RedisError):
                raise r
        return replies


class RedisServer(_Process):
    def __init__(self, port=None, replicaof=None, password=None, extra=()):
        """replicaof: another RedisServer (or a port) this one replicates."""
        super().__init__(port, password)
        self.replicaof = replicaof
        self.extra = list(extra)

    def _args(self):
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
                "--save", "", "--appendonly", "no", "--daemonize", "no",
                "--logfile", os.path.join(self.dir, "redis.log")]
        if self.password:
            args += ["--requirepass", self.password, "--masterauth", self.password]
        if self.replicaof is not None:
            port = self.replicaof if isinstance(self.replicaof, int) else self.replicaof.port
            args += ["--replicaof", "127.0.0.1", str(port)]
        return args + self.extra

    def keys(self, pattern="*"):
        return sorted(self.command("KEYS", pattern))

    def subscribe(self, channel):
        """A subscriber on `channel` (a context manager); .messages() is the
        payloads received so far (str, surrogate-escaped)."""
        return _Subscription(self, channel)

    def role(self):
        return self.command("ROLE")[0]

    def wait_replication(self, timeout=15.0):
        """For a replica: waits until its link to the master is up."""
        if not wait_until(lambda: "master_link_status:up" in self.command("INFO", "replication"),
                          timeout):
            raise AssertionError("replica on %d never linked to its master" % self.port)


class Sentinel(_Process):
    """A Redis Sentinel (quorum 1) watching `master` under `name`; short
    down-after and failover timeouts so a failover takes a few seconds."""

    def __init__(self, name, master, port=None, down_after_ms=500, failover_timeout_ms=2000):
        super().__init__(port)
        self.name = name
        mport = master if isinstance(master, int) else master.port
        self.conf = os.path.join(self.dir, "sentinel.conf")
        with open(self.conf, "w") as f:   # sentinel rewrites it: it must be its own file
            f.write("sentinel monitor %s 127.0.0.1 %d 1\n" % (name, mport))
            f.write("sentinel down-after-milliseconds %s %d\n" % (name, down_after_ms))
            f.write("sentinel failover-timeout %s %d\n" % (name, failover_timeout_ms))
            f.write("sentinel parallel-syncs %s 1\n" % name)

    def _args(self):
        return [self.conf, "--sentinel", "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", self.dir, "--logfile", os.path.join(self.dir, "redis.log")]

    def master_address(self):
        r = self.command("SENTINEL", "get-master-addr-by-name", self.name)
        return (r[0], int(r[1])) if r else None

    def wait_replicas(self, n, timeout=20.0):
        """Waits until the sentinel knows n replicas of the master (it learns
        them from the master's INFO, every 10 s at worst)."""
        if not wait_until(lambda: len(self.command("SENTINEL", "replicas", self.name)) >= n,
                          timeout, interval=0.1):
            raise AssertionError("sentinel did not discover %d replica(s)" % n)

    def wait_master(self, port, timeout=30.0):
        """Waits until the sentinel names 127.0.0.1:port as the master."""
        if not wait_until(lambda: self.master_address() == ("127.0.0.1", port), timeout,
                          interval=0.1):
            raise AssertionError("sentinel still names %r, not port %d" % (self.master_address(), port))


class _Subscription:
    def __init__(self, server, channel):
        self._sock = socket.create_connection(("127.0.0.1", server.port), timeout=5.0)
        cmds = ([("AUTH", server.password)] if server.password else []) + [("SUBSCRIBE", channel)]
        self._sock.sendall(b"".join(_encode(c) for c in cmds))
        self._file = self._sock.makefile("rb")
        for _ in cmds:   # +OK, then the subscribe confirmation: subscribed from here on
            _read_reply(self._file)
        self._sock.settimeout(None)
        self._lock = threading.Lock()
        self._messages = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        try:
            while True:
                r = _read_reply(self._file)
                if isinstance(r, list) and len(r) == 3 and r[0] == "message":
                    with self._lock:
                        self._messages.append(r[2])
        except (OSError, ValueError, ConnectionError):
            pass

    def messages(self):
        with self._lock:
            return list(self._messages)

    def close(self):
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        self._thread.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
