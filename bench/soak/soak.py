#!/usr/bin/python3
"""Chaos and soak for sag (issue 10): mixed load against a real gateway while
servers are killed and restarted, SIGSTOPped, and Redis is restarted; a
report of the figures and a non-zero exit when an assertion fails.

    bench/soak/soak.py --duration 600 --seed 1

Needs SAG_BIN_DIR (the directory holding `gateway`; default: build/bin of
this checkout), redis-server, openssl and python3-h2. Everything listens and
connects on 127.0.0.1 only (source-pinned clients bind 127.0.0.x as their
source address). See README.md next to this file for what is measured.

The harness is also a module: tests/integration/test_load_chaos.py calls
run(duration=60) and asserts on the Report it returns.
"""

import argparse
import collections
import hashlib
import http.client
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
SUPPORT = os.path.join(ROOT, "tests", "support")
if SUPPORT not in sys.path:
    sys.path.insert(0, SUPPORT)

from fake_server import FakeServer, download_sha256  # noqa: E402
from gateway import Gateway, forget, make_cert, spawn  # noqa: E402

LOCAL = "127.0.0.1"
CLIENT_TIMEOUT = 30.0          # every client socket operation (> SIGSTOP + checks)
SERVER_TIMEOUT = "30s"         # gateway timeouts.server (a stopped server comes back in 5 s)
HEALTH = {"type": "http", "path": "/healthz", "interval": "500ms", "timeout": "1s",
          "rise": 2, "fall": 3}
DOWNLOAD_SIZES = (1000, 7919, 65536, 100003, 262144)
SLOW_SIZES = (524287, 1048573, 2000003)
KINDS = ("keepalive", "newconn", "post", "slow", "learn", "source", "h2", "ws")
VIEW_SLOP = 0.5                # seconds around the gateway's own down/up log lines
KILL_SLOP = 0.5                # seconds around a kill or stop, for cut responses


# =========================================================================
# Fake servers that record (time, method, rid) compactly
# =========================================================================
class SoakServer(FakeServer):
    """A FakeServer that keeps, instead of whole requests, (monotonic time,
    method, rid) for requests carrying ?rid=, and optionally writes them to
    a log file (for the child-process server)."""

    def __init__(self, name, log_path=None, **kw):
        self.records = []
        self.health_requests = 0
        self._logf = open(log_path, "a", buffering=1) if log_path else None
        super().__init__(name, **kw)

    def _record(self, req):
        rid = req.query.get("rid")
        t = time.monotonic()
        with self._lock:
            if rid is None:
                self.health_requests += 1
            else:
                self.records.append((t, req.method, rid))
                if self._logf is not None:
                    self._logf.write("%.6f %s %s\n" % (t, req.method, rid))
            self._lock.notify_all()

    def take_records(self):
        with self._lock:
            out = self.records
            self.records = []
            return out


def child_main(name, log_path):
    """--fake-child: serve one SoakServer until killed; print its port."""
    srv = SoakServer(name, log_path=log_path)
    sys.stdout.write("PORT %d\n" % srv.port)
    sys.stdout.flush()
    signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
    while True:
        time.sleep(3600)


class ChildServer:
    """A SoakServer in a child process (so that it can be SIGSTOPped)."""

    def __init__(self, name, workdir):
        self.name = name
        self.log_path = os.path.join(workdir, "child-%s.log" % name)
        open(self.log_path, "w").close()
        self.proc = spawn([sys.executable, os.path.abspath(__file__), "--fake-child", name,
                           "--log", self.log_path],
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.port = None
        deadline = time.monotonic() + 20
        line = b""
        while time.monotonic() < deadline and not line.endswith(b"\n"):
            r, _, _ = select.select([self.proc.stdout], [], [], 0.5)
            if r:
                b = os.read(self.proc.stdout.fileno(), 100)
                if not b:
                    break
                line += b
        if not line.startswith(b"PORT "):
            self.stop()
            raise RuntimeError("child fake server %s did not start (%r)" % (name, line))
        self.port = int(line.split()[1])
        self.stopped = False

    def sigstop(self):
        self.proc.send_signal(signal.SIGSTOP)
        self.stopped = True

    def sigcont(self):
        self.proc.send_signal(signal.SIGCONT)
        self.stopped = False

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGCONT)
                self.proc.terminate()
                self.proc.wait(timeout=5)
            except Exception:
                self.proc.kill()
                self.proc.wait(timeout=5)
        forget(self.proc)
        try:
            self.proc.stdout.close()
        except Exception:
            pass

    def take_records(self):
        out = []
        with open(self.log_path) as f:
            for line in f:
                p = line.split()
                if len(p) == 3:
                    out.append((float(p[0]), p[1], p[2]))
        return out


# =========================================================================
# Up/down intervals: what the chaos did, and what the gateway saw
# =========================================================================
class Timeline:
    def __init__(self):
        self.lock = threading.Lock()
        self.intervals = collections.defaultdict(list)   # name -> [[start, end or None, what]]

    def down(self, name, what, t=None):
        with self.lock:
            self.intervals[name].append([t or time.monotonic(), None, what])

    def up(self, name, t=None):
        with self.lock:
            for iv in reversed(self.intervals[name]):
                if iv[1] is None:
                    iv[1] = t or time.monotonic()
                    break

    def overlaps(self, name, t0, t1, slop=0.0):
        """The first interval of name overlapping [t0, t1] (widened by slop), or None."""
        with self.lock:
            for s, e, what in self.intervals.get(name, ()):
                if s - slop <= t1 and (e is None or e + slop >= t0):
                    return (s, e, what)
        return None

    def all(self):
        with self.lock:
            return {k: [list(iv) for iv in v] for k, v in self.intervals.items()}


# =========================================================================
# Counters
# =========================================================================
ASSERTED = [
    ("failed_idempotent", "failed idempotent requests"),
    ("double_post", "POSTs delivered more than once"),
    ("moved_up", "sessions moved while their server was up"),
    ("foreign_body", "responses with a body not of the request"),
    ("post_failed_up", "POSTs failed while their server was up"),
]


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * (len(v) - 1)))))
    return v[k]


class Stats:
    MAX_DETAILS = 25

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = collections.Counter()     # kind -> requests sent
        self.ok = collections.Counter()           # kind -> answered 2xx with the right body
        self.allowed = collections.Counter()      # kind -> failed because its server was killed
        self.lat = collections.defaultdict(list)  # kind -> latencies (s) of ok requests
        self.c = collections.Counter()            # named counters
        self.details = collections.defaultdict(list)
        self.pending_posts = []                   # POSTs without a good answer, judged at the end
        self.ok_posts = 0

    def bump(self, name, detail=None, n=1):
        with self.lock:
            self.c[name] += n
            if detail is not None and len(self.details[name]) < self.MAX_DETAILS:
                self.details[name].append(detail)


class Result:
    """One request's outcome as a client saw it."""
    __slots__ = ("status", "server", "body", "error", "set_cookies", "t_send", "t_recv")

    def __init__(self):
        self.status = None        # None: no response head
        self.server = None        # X-Server of the response
        self.body = None          # "ok" | "wrong: ..." | "cut: ..." | None
        self.error = None
        self.set_cookies = {}
        self.t_send = self.t_recv = None


def parse_set_cookies(headers):
    out = {}
    for k, v in headers:
        if k.lower() == "set-cookie":
            first = v.split(";", 1)[0]
            n, _, val = first.partition("=")
            out[n.strip()] = val.strip()
    return out


def header(headers, name):
    n = name.lower()
    for k, v in headers:
        if k.lower() == n:
            return v
    return None


# --------------------------------------------------------------- body checks
def expect_echo(method, target):
    def check(server, headers, body):
        want = ("hello from %s: %s %s\n" % (server, method, target)).encode()
        if body == want:
            return "ok"
        return "wrong: %r instead of %r" % (bytes(body[:160]), want)
    return check


def expect_download(size):
    def check(server, headers, body):
        if len(body) != size:
            return "wrong: %d bytes instead of %d" % (len(body), size)
        if hashlib.sha256(body).hexdigest() != download_sha256(size):
            return "wrong: %d bytes, sha256 differs" % size
        return "ok"
    return check


def expect_upload(sha, length):
    def check(server, headers, body):
        try:
            j = json.loads(bytes(body))
        except ValueError:
            return "wrong: not JSON: %r" % bytes(body[:160])
        if j.get("sha256") == sha and j.get("length") == length:
            return "ok"
        return "wrong: %r instead of length %d sha %s" % (j, length, sha[:12])
    return check


def expect_setcookie(sid):
    def check(server, headers, body):
        if body != b"cookie set\n":
            return "wrong: %r" % bytes(body[:160])
        if parse_set_cookies(headers).get("JSESSIONID") != sid:
            return "wrong: Set-Cookie %r for session %s" % (header(headers, "set-cookie"), sid)
        return "ok"
    return check


# =========================================================================
# HTTP/1.1 client (http.client over a socket made here: TLS, source address,
# small receive buffer for slow readers)
# =========================================================================
def _tls_ctx(alpn):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(list(alpn))
    return ctx


class H1:
    def __init__(self, port, tls=False, source_ip=None, rcvbuf=None, host=None):
        self.port = port
        self.tls = tls
        self.source_ip = source_ip
        self.rcvbuf = rcvbuf
        self.host = host or "%s:%d" % (LOCAL, port)
        self.ctx = _tls_ctx(("http/1.1",)) if tls else None
        self.connections = 0
        outer = self

        class _Conn(http.client.HTTPConnection):
            def connect(self):
                self.sock = outer._socket()

        self.conn = _Conn(LOCAL, port, timeout=CLIENT_TIMEOUT)

    def _socket(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            if self.rcvbuf:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
            if self.source_ip:
                s.bind((self.source_ip, 0))
            s.settimeout(CLIENT_TIMEOUT)
            s.connect((LOCAL, self.port))
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls:
                s = self.ctx.wrap_socket(s, server_hostname="localhost")
        except BaseException:
            s.close()
            raise
        self.connections += 1
        return s

    def request(self, method, target, headers=(), body=None, check=None, slow=None):
        """One request; returns a Result (never raises for network errors)."""
        res = Result()
        res.t_send = time.monotonic()
        try:
            c = self.conn
            c.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            c.putheader("Host", self.host)
            for k, v in headers:
                c.putheader(k, v)
            if body is not None:
                c.putheader("Content-Length", str(len(body)))
            c.endheaders(body)
            r = c.getresponse()
        except Exception as e:
            res.t_recv = time.monotonic()
            res.error = "%s: %s" % (type(e).__name__, e)
            self.close()
            return res
        res.status = r.status
        hs = r.getheaders()
        res.server = header(hs, "x-server")
        res.set_cookies = parse_set_cookies(hs)
        data = bytearray()
        try:
            if slow:
                chunk, pause = slow
                while True:
                    b = r.read(chunk)
                    if not b:
                        break
                    data += b
                    time.sleep(pause)
                cl = header(hs, "content-length")
                if cl is not None and len(data) < int(cl):
                    raise http.client.IncompleteRead(bytes(data[-10:]), int(cl) - len(data))
            else:
                data += r.read()
        except Exception as e:
            res.t_recv = time.monotonic()
            res.body = "cut: %s after %d bytes" % (type(e).__name__, len(data))
            self.close()
            return res
        res.t_recv = time.monotonic()
        if check is not None and 200 <= r.status < 300:
            res.body = check(res.server, hs, data)
        else:
            res.body = "status %d: %r" % (r.status, bytes(data[:120]))
        if r.will_close:
            self.close()
        return res

    def close(self):
        try:
            self.conn.close()
        except Exception:
            pass


# =========================================================================
# The run
# =========================================================================
class Session:
    """One client session: what it sends (cookie / learned id / source) and
    the server it is pinned to."""

    def __init__(self, kind, sid):
        self.kind = kind
        self.sid = sid
        self.srv_cookie = None      # SRV value (cookie backends)
        self.pinned = None          # server the session is on
        self.note = ""              # for reports: what the current request carried


class Run:
    def __init__(self, duration, seed, log=None, kill_every=2.0, kill_down=1.0,
                 stop_every=12.0, stop_for=5.0, redis_every=20.0, think_ms=2.0, kinds=KINDS,
                 chaos=True):
        self.duration = duration
        self.seed = seed
        self.rng = random.Random(seed)
        self.log = log or (lambda s: None)
        self.kill_every, self.kill_down = kill_every, kill_down
        self.stop_every, self.stop_for = stop_every, stop_for
        self.redis_every = redis_every
        self.think = think_ms / 1000.0
        self.kinds = set(kinds)
        self.with_chaos = chaos
        self.stats = Stats()
        self.real = Timeline()      # what the chaos did
        self.view = Timeline()      # what the gateway logged (down/up)
        self.stop_event = threading.Event()
        self.deadline = None
        self.rid_lock = threading.Lock()
        self.rid_n = 0
        self.servers = {}           # name -> SoakServer | ChildServer
        self.children = []
        self.in_proc = []
        self.gw = None
        self.redis = None
        self.workdir = None
        self.t0 = None
        self.samples = []           # (t, rss_kib, fds)
        self.chaos_counts = collections.Counter()
        self.gateway_died = None
        self.metrics = {}
        self.hung_workers = []
        self.worker_errors = []

    # ------------------------------------------------------------ helpers
    def rid(self, tag):
        with self.rid_lock:
            self.rid_n += 1
            return "%s%d" % (tag, self.rid_n)

    def running(self):
        return not self.stop_event.is_set() and time.monotonic() < self.deadline

    def pause(self, rnd):
        if self.think:
            time.sleep(rnd.uniform(0, 2 * self.think))

    def was_down(self, name, t0, t1):
        """Why a session may have left server `name` in [t0, t1], or None."""
        iv = self.real.overlaps(name, t0, t1)
        if iv:
            return iv[2]
        iv = self.view.overlaps(name, t0, t1, VIEW_SLOP)
        if iv:
            return "gateway saw it down"
        return None

    # ------------------------------------------------------------ judging
    def judge(self, kind, method, rid, sess, res, cookie_backend=False, expected=False):
        """Counts one result; updates the session. Returns True when ok.
        expected: the server the session was pinned to when the request was
        sent (default: sess.pinned now; concurrent HTTP/2 streams pass it)."""
        st = self.stats
        ok = res.status is not None and 200 <= res.status < 300 and res.body == "ok"
        idempotent = method == "GET"
        with st.lock:
            st.requests[kind] += 1
        if ok:
            with st.lock:
                st.ok[kind] += 1
                st.lat[kind].append(res.t_recv - res.t_send)
                if method == "POST":
                    st.ok_posts += 1
            if sess is not None:
                self.session_update(kind, sess, res, cookie_backend,
                                    sess.pinned if expected is False else expected, rid)
            return True
        what = ("%s %s rid=%s status=%s server=%s body=%s error=%s t=%.2f..%.2f"
                % (kind, method, rid, res.status, res.server, res.body, res.error,
                   res.t_send - self.t0, res.t_recv - self.t0))
        if res.body and res.body.startswith("wrong"):
            st.bump("foreign_body", what)
            if idempotent:
                st.bump("failed_idempotent", what)
            return False
        if method == "POST":
            with st.lock:
                st.pending_posts.append((kind, rid, res.t_send, res.t_recv, what))
            return False
        if (res.body and res.body.startswith("cut") and res.server
                and self.real.overlaps(res.server, res.t_send, res.t_recv, KILL_SLOP)):
            st.bump("cut_by_kill", what)
            with st.lock:
                st.allowed[kind] += 1
            return False
        st.bump("failed_idempotent", what)
        return False

    def new_session_server(self, results, t0, t1):
        """The server a new session's concurrent streams were pinned to.
        The gateway pins whichever stream it resolved first, not the first
        sent; when that server fails mid-batch, the streams retried move
        elsewhere (allowed: their server was down). So when the streams
        answered from several servers, the one that went down in the batch
        is the session's; otherwise the first answer's (and any other is a
        move while its server was up)."""
        servers = [res.server for _, _, res in results if res.server]
        for name in dict.fromkeys(servers):
            if len(set(servers)) > 1 and self.was_down(name, t0, t1):
                return name
        return servers[0] if servers else None

    def session_update(self, kind, sess, res, cookie_backend, exp, rid):
        st = self.stats
        got = res.server
        if exp is not None and got != exp:
            why = self.was_down(exp, res.t_send, res.t_recv)
            detail = ("%s session %s rid=%s moved %s -> %s in %.2f..%.2f (%s)%s"
                      % (kind, sess.sid, rid, exp, got, res.t_send - self.t0, res.t_recv - self.t0,
                         why or "its server was up",
                         "; Set-Cookie %s%s" % (res.set_cookies.get("SRV"), sess.note)
                         if cookie_backend else ""))
            if why is None:
                st.bump("moved_up", detail)
            else:
                st.bump("moved_down", detail)
                if why == "gateway saw it down":
                    st.bump("moved_view_only", detail)
        if cookie_backend:
            v = res.set_cookies.get("SRV")
            if v:
                sess.srv_cookie = v
                sess.pinned = got
            elif sess.pinned is None:
                sess.pinned = got
        else:
            sess.pinned = got

    # ------------------------------------------------------------- set-up
    def config(self, certs):
        def backend(name, names, persistence, balance):
            return {"name": name, "balance": balance,
                    "servers": [{"name": n, "address": "127.0.0.1:%d" % self.servers[n].port}
                                for n in names],
                    "health_check": HEALTH, "persistence": persistence,
                    "redispatch": True, "retries": 3,
                    "timeouts": {"connect": "1s", "server": SERVER_TIMEOUT},
                    "pool": {"max_idle_per_server": 64, "idle_timeout": "3s"}}
        routes = [{"host": "learn.soak", "backend": "learn"},
                  {"host": "src.soak", "backend": "src"}]
        return {
            "workers": 2,
            "listeners": [
                {"name": "https", "bind": "127.0.0.1:0",
                 "tls": {"certificates": certs, "alpn": ["h2", "http/1.1"]},
                 "routes": routes, "backend": "cook"},
                {"name": "http", "bind": "127.0.0.1:0", "routes": routes, "backend": "cook"},
            ],
            "backends": [
                backend("cook", ["c1", "c2", "c3", "cX"],
                        {"cookie": {"name": "SRV", "mode": "insert"}}, "roundrobin"),
                backend("learn", ["l1", "l2", "l3", "lX"],
                        {"learn": {"cookie": "JSESSIONID", "ttl": "30m"}}, "leastconn"),
                backend("src", ["s1", "s2", "s3", "sX"],
                        {"source": {"ipv4_mask": 32, "ttl": "30m"}}, "roundrobin"),
            ],
            "forwarded": {"trusted_proxies": []},
            "affinity_store": {"type": "redis",
                               "redis": {"address": self.redis.address, "key_prefix": "soak:"}},
            "admin": {"bind": "127.0.0.1:0"},
        }

    def start(self):
        from redis import RedisServer
        self.redis = RedisServer().start()
        for n in ("c1", "c2", "c3", "l1", "l2", "l3", "s1", "s2", "s3"):
            s = SoakServer(n)
            self.servers[n] = s
            self.in_proc.append(s)
        self.workdir = tempfile.mkdtemp(prefix="sag-soak-")
        for n in ("cX", "lX", "sX"):
            c = ChildServer(n, self.workdir)
            self.servers[n] = c
            self.children.append(c)
        self.gw = Gateway(self.config(make_cert()), startup_timeout=20)
        self.https = self.gw.port("https")
        self.http = self.gw.port("http")

    def stop_all(self):
        self.stop_event.set()
        for c in self.children:
            try:
                c.stop()
            except Exception:
                pass
        for s in self.in_proc:
            try:
                s.stop()
            except Exception:
                pass
        if self.gw is not None and self.gw.proc is not None and self.gw.returncode is None:
            try:
                self.gw.stop(signal.SIGTERM, timeout=20)
            except Exception:
                pass
        if self.redis is not None:
            try:
                self.redis.close()
            except Exception:
                pass
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # ------------------------------------------------------------- gateway
    def gw_rss(self):
        with open("/proc/%d/status" % self.gw.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return None

    def gw_fds(self):
        return len(os.listdir("/proc/%d/fd" % self.gw.pid))

    def fetch_metrics(self):
        url = "http://127.0.0.1:%d/metrics" % self.gw.port("admin")
        with urllib.request.urlopen(url, timeout=10) as r:
            text = r.read().decode()
        from admin import parse_metrics
        return parse_metrics(text)

    # -------------------------------------------------------------- chaos
    def chaos(self):
        """Kills and restarts an in-process server every kill_every s (down
        kill_down s), SIGSTOPs a child server for stop_for s every stop_every s,
        restarts Redis (empty) every redis_every s; samples the gateway's RSS
        and fds every second; tails its stderr for down/up lines."""
        rnd = random.Random(self.seed * 7919 + 1)
        victims = list(self.in_proc)
        rnd.shuffle(victims)
        stoppers = list(self.children)
        rnd.shuffle(stoppers)
        t0 = self.t0
        next_kill, next_stop, next_redis, next_sample = t0 + 2.0, t0 + 5.0, t0 + 10.0, t0
        pending = []            # (t, fn)
        vi = si = 0
        err_off = 0
        end = self.deadline - 1.0
        try:
            while not self.stop_event.is_set():
                now = time.monotonic()
                if now >= self.deadline + 0.5 and not pending:
                    break
                if now < end and self.with_chaos:
                    if now >= next_kill:
                        v = victims[vi % len(victims)]
                        vi += 1
                        self.real.down(v.name, "killed")
                        v.stop()
                        self.chaos_counts["server kills"] += 1
                        pending.append((now + self.kill_down, lambda v=v: self._restart(v)))
                        next_kill += self.kill_every
                    if now >= next_stop:
                        c = stoppers[si % len(stoppers)]
                        si += 1
                        self.real.down(c.name, "SIGSTOPped")
                        c.sigstop()
                        self.chaos_counts["server SIGSTOPs (%.0f s)" % self.stop_for] += 1
                        pending.append((now + self.stop_for, lambda c=c: self._cont(c)))
                        next_stop += self.stop_every
                    if now >= next_redis:
                        self.redis.kill()
                        self.chaos_counts["redis restarts"] += 1
                        pending.append((now + 1.0, self._redis_start))
                        next_redis += self.redis_every
                due = [p for p in pending if p[0] <= now]
                for p in due:
                    pending.remove(p)
                    p[1]()
                if now >= next_sample:
                    next_sample += 1.0
                    if self.gw.proc.poll() is not None:
                        self.gateway_died = "gateway exited with %s at %.1f s" % (
                            self.gw.proc.returncode, now - t0)
                        self.stop_event.set()
                        break
                    try:
                        self.samples.append((now, self.gw_rss(), self.gw_fds()))
                    except OSError:
                        pass
                err_off = self._tail_stderr(err_off)
                time.sleep(0.05)
        finally:
            for _, fn in pending:
                try:
                    fn()
                except Exception:
                    traceback.print_exc()
            for c in self.children:
                if c.stopped:
                    self._cont(c)
            for s in self.in_proc:
                if not s.running:
                    self._restart(s)
            if self.redis is not None and not self.redis.alive():
                self._redis_start()

    def _restart(self, srv):
        for attempt in range(50):
            try:
                srv.start()
                break
            except OSError:
                time.sleep(0.1)
        self.real.up(srv.name)

    def _cont(self, c):
        c.sigcont()
        self.real.up(c.name)

    def _redis_start(self):
        try:
            self.redis.start()
        except Exception as e:
            self.worker_errors.append("redis restart failed: %s" % e)

    _DOWNUP = re.compile(r" server ([^/\s]+)/(\S+) is (down|up|back)")

    def _tail_stderr(self, off):
        try:
            with open(self.gw.stderr_path, "rb") as f:
                f.seek(off)
                data = f.read()
        except OSError:
            return off
        end = data.rfind(b"\n")
        if end < 0:
            return off
        now = time.monotonic()
        for line in data[:end].decode("utf-8", "replace").split("\n"):
            m = self._DOWNUP.search(line)
            if not m or self.t0 is None:
                continue
            name = m.group(2)
            if m.group(3) == "down":
                self.view.down(name, "gateway: down", now)
            else:
                self.view.up(name, now)
        return off + end + 1

    # ------------------------------------------------------------ workers
    def worker(self, fn, *args):
        def run():
            try:
                fn(*args)
            except Exception:
                self.worker_errors.append("%s%r: %s" % (fn.__name__, args, traceback.format_exc()))
        t = threading.Thread(target=run, name="%s%r" % (fn.__name__, args), daemon=True)
        return t

    def cookie_headers(self, sess):
        return [("Cookie", "SRV=" + sess.srv_cookie)] if sess.srv_cookie else []

    def w_cookie(self, wid, tls, newconn):
        """HTTP/1.1 with the insert cookie, keep-alive or a new connection per
        request; GETs of / (echo) and downloads."""
        kind = "h1-%s-%s" % ("newconn" if newconn else "keepalive", "tls" if tls else "plain")
        rnd = random.Random(self.seed * 1000 + wid)
        c = H1(self.https if tls else self.http, tls=tls)
        sess, left, n = Session(kind, "w%d.0" % wid), rnd.randint(50, 300), 0
        try:
            while self.running():
                if left <= 0:
                    n += 1
                    sess, left = Session(kind, "w%d.%d" % (wid, n)), rnd.randint(50, 300)
                left -= 1
                rid = self.rid("k")
                if rnd.random() < 0.15:
                    size = rnd.choice(DOWNLOAD_SIZES)
                    target, check = "/download?size=%d&rid=%s" % (size, rid), expect_download(size)
                else:
                    target = "/?rid=%s" % rid
                    check = expect_echo("GET", target)
                res = c.request("GET", target, self.cookie_headers(sess), check=check)
                if newconn:
                    c.close()
                self.judge(kind, "GET", rid, sess, res, cookie_backend=True)
                self.pause(rnd)
        finally:
            c.close()

    def w_post(self, wid):
        """POST /upload with random bodies (keep-alive, insert cookie)."""
        kind = "h1-post"
        rnd = random.Random(self.seed * 1000 + wid)
        c = H1(self.http, tls=False)
        sess = Session(kind, "w%d" % wid)
        try:
            while self.running():
                rid = self.rid("p")
                n = rnd.choice((0, 1, 100, 4000, 20000, 70000, 200000))
                body = rnd.randbytes(n)
                sha = hashlib.sha256(body).hexdigest()
                target = "/upload?rid=%s" % rid
                res = c.request("POST", target, self.cookie_headers(sess), body=body,
                                check=expect_upload(sha, n))
                self.judge(kind, "POST", rid, sess, res, cookie_backend=True)
                self.pause(rnd)
        finally:
            c.close()

    def w_slow(self, wid):
        """Slow readers: large downloads read 8 KiB at a time with pauses,
        through a 32 KiB receive buffer."""
        kind = "h1-slow-reader"
        rnd = random.Random(self.seed * 1000 + wid)
        c = H1(self.http, tls=False, rcvbuf=32768)
        sess = Session(kind, "w%d" % wid)
        try:
            while self.running():
                rid = self.rid("r")
                size = rnd.choice(SLOW_SIZES)
                target = "/download?size=%d&rid=%s" % (size, rid)
                res = c.request("GET", target, self.cookie_headers(sess),
                                check=expect_download(size), slow=(8192, 0.008))
                self.judge(kind, "GET", rid, sess, res, cookie_backend=True)
                self.pause(rnd)
        finally:
            c.close()

    def w_learn(self, wid, tls):
        """Learned sessions: /setcookie has the server set JSESSIONID, then
        requests carry it (keep-alive, sometimes a new connection)."""
        kind = "h1-learn"
        rnd = random.Random(self.seed * 1000 + wid)
        port = self.https if tls else self.http
        c = H1(port, tls=tls, host="learn.soak")
        n = 0
        try:
            while self.running():
                n += 1
                sid = "soak%d-%d-%08x" % (wid, n, rnd.getrandbits(32))
                sess = Session(kind, sid)
                rid = self.rid("l")
                target = "/setcookie?name=JSESSIONID&value=%s&rid=%s" % (sid, rid)
                res = c.request("GET", target, check=expect_setcookie(sid))
                if not self.judge(kind, "GET", rid, sess, res):
                    continue
                for _ in range(rnd.randint(5, 40)):
                    if not self.running():
                        break
                    if rnd.random() < 0.2:
                        c.close()
                    rid = self.rid("l")
                    target = "/?rid=%s" % rid
                    res = c.request("GET", target, [("Cookie", "JSESSIONID=" + sid)],
                                    check=expect_echo("GET", target))
                    self.judge(kind, "GET", rid, sess, res)
                    self.pause(rnd)
        finally:
            c.close()

    def w_source(self, wid, ips):
        """Source-pinned clients: each of `ips` (127.0.0.x) is one session."""
        kind = "h1-source"
        rnd = random.Random(self.seed * 1000 + wid)
        clients = {ip: H1(self.http, source_ip=ip, host="src.soak") for ip in ips}
        sessions = {ip: Session(kind, ip) for ip in ips}
        try:
            while self.running():
                ip = rnd.choice(ips)
                c = clients[ip]
                if rnd.random() < 0.3:
                    c.close()
                rid = self.rid("s")
                target = "/?rid=%s" % rid
                res = c.request("GET", target, check=expect_echo("GET", target))
                self.judge(kind, "GET", rid, sessions[ip], res)
                self.pause(rnd)
        finally:
            for c in clients.values():
                c.close()

    def w_h2(self, wid):
        """HTTP/2 (TLS, ALPN h2): batches of 4-8 concurrent streams (echo
        GETs, downloads, sometimes a POST) on one connection, reconnecting
        every 5-30 batches; insert cookie."""
        from h2client import H2Client
        kind = "h2"
        rnd = random.Random(self.seed * 1000 + wid)
        sess, n_sess = Session(kind, "w%d.0" % wid), 0
        client, batches_left = None, 0
        try:
            while self.running():
                if client is None or batches_left <= 0 or client.closed or client.goaways \
                        or client.protocol_error:
                    if client is not None:
                        client.close()
                    client = None
                    t = time.monotonic()
                    try:
                        client = H2Client(LOCAL, self.https, tls=True, timeout=CLIENT_TIMEOUT)
                    except Exception as e:
                        res = Result()
                        res.t_send, res.t_recv = t, time.monotonic()
                        res.error = "connect: %s: %s" % (type(e).__name__, e)
                        self.judge(kind, "GET", "-", None, res)
                        time.sleep(0.2)
                        continue
                    batches_left = rnd.randint(5, 30)
                    if rnd.random() < 0.2:
                        n_sess += 1
                        sess = Session(kind, "w%d.%d" % (wid, n_sess))
                batches_left -= 1
                hdrs = [("cookie", "SRV=" + sess.srv_cookie)] if sess.srv_cookie else []
                reqs = []   # (sid, method, rid, check, t)
                exp = sess.pinned
                sess.note = "; sent cookie %s on connection %d batch %d" % (
                    sess.srv_cookie, id(client) % 10000, batches_left)
                for i in range(rnd.randint(4, 8)):
                    rid = self.rid("h")
                    r = rnd.random()
                    if r < 0.1:
                        nbytes = rnd.choice((10, 3000, 40000))
                        body = rnd.randbytes(nbytes)
                        target = "/upload?rid=%s" % rid
                        sid = client.request("POST", target,
                                             hdrs + [("content-length", str(nbytes))], body=body)
                        reqs.append((sid, "POST", rid, expect_upload(
                            hashlib.sha256(body).hexdigest(), nbytes), time.monotonic()))
                    elif r < 0.3:
                        size = rnd.choice(DOWNLOAD_SIZES)
                        target = "/download?size=%d&rid=%s" % (size, rid)
                        sid = client.request("GET", target, hdrs)
                        reqs.append((sid, "GET", rid, expect_download(size), time.monotonic()))
                    else:
                        target = "/?rid=%s" % rid
                        sid = client.request("GET", target, hdrs)
                        reqs.append((sid, "GET", rid, expect_echo("GET", target), time.monotonic()))
                t_send = reqs[0][4]
                client.responses([r[0] for r in reqs], timeout=CLIENT_TIMEOUT + 5)
                t_end = time.monotonic()
                results = []
                for sid, method, rid, check, _ in reqs:
                    st = client.streams[sid]
                    res = Result()
                    res.t_send = t_send
                    res.t_recv = st.t_end or t_end
                    res.status = st.status
                    res.server = st.header("x-server") if st.status is not None else None
                    res.set_cookies = parse_set_cookies(st.headers)
                    if st.status is None:
                        res.error = ("no response head (reset=%s closed=%s goaway=%s "
                                     "protocol_error=%s)" % (st.reset, client.closed,
                                                             client.goaways, client.protocol_error))
                    elif not st.ended:
                        res.body = "cut: reset=%s closed=%s after %d bytes" % (
                            st.reset, client.closed, st.length)
                    elif 200 <= st.status < 300:
                        res.body = check(res.server, st.headers, bytes(st.body))
                    else:
                        res.body = "status %d: %r" % (st.status, bytes(st.body[:120]))
                    results.append((method, rid, res))
                    st.body = None
                client.streams.clear()
                if exp is None:
                    exp = self.new_session_server(results, t_send, t_end)
                for method, rid, res in results:
                    self.judge(kind, method, rid, sess, res, cookie_backend=True, expected=exp)
                self.pause(rnd)
        finally:
            if client is not None:
                client.close()

    def w_ws(self, wid, tls):
        """WebSocket echo (insert cookie): 5-30 text messages 50 ms apart,
        each echo checked, then a clean close."""
        from wsclient import WsClient, OP_TEXT, OP_CLOSE
        kind = "websocket"
        rnd = random.Random(self.seed * 1000 + wid)
        sess = Session(kind, "w%d" % wid)
        st = self.stats
        while self.running():
            rid = self.rid("w")
            res = Result()
            res.t_send = time.monotonic()
            hdrs = self.cookie_headers(sess)
            try:
                ws = WsClient(LOCAL, self.https if tls else self.http, tls=tls,
                              path="/ws?rid=%s" % rid, headers=hdrs, timeout=CLIENT_TIMEOUT)
            except Exception as e:
                res.t_recv = time.monotonic()
                res.error = "handshake: %s: %s" % (type(e).__name__, e)
                self.judge(kind, "GET", rid, sess, res, cookie_backend=True)
                time.sleep(0.1)
                continue
            res.t_recv = time.monotonic()
            r = ws.response
            res.status = r.status
            res.server = r.header("x-server")
            res.set_cookies = parse_set_cookies(r.headers)
            if r.status != 101 or not ws.upgraded:
                res.body = "handshake answered %s" % r.status
                ws.shutdown()
                self.judge(kind, "GET", rid, sess, res, cookie_backend=True)
                continue
            t_hs = res.t_recv - res.t_send
            body = "ok"
            try:
                for i in range(rnd.randint(5, 30)):
                    msg = "%s:%d:%08x" % (rid, i, rnd.getrandbits(32))
                    ws.send_text(msg)
                    op, payload = ws.recv_message(timeout=CLIENT_TIMEOUT)
                    if op != OP_TEXT or payload != msg.encode():
                        body = "wrong: echo %r %r for %r" % (op, payload[:100], msg)
                        break
                    with st.lock:
                        st.c["websocket messages echoed"] += 1
                    time.sleep(0.05)
                if body == "ok":
                    ws.close(1000)
                    op, payload = ws.recv_message(timeout=CLIENT_TIMEOUT)
                    if op != OP_CLOSE:
                        body = "wrong: %r instead of close" % op
                    ws.wait_eof(5)
            except Exception as e:
                body = "cut: %s: %s" % (type(e).__name__, e)
            finally:
                ws.shutdown()
            res.t_recv = time.monotonic()
            res.body = body
            res.status = 200 if body == "ok" else 101   # judged as a GET whose "body" is the echo
            ok = self.judge(kind, "GET", rid, sess, res, cookie_backend=True)
            if ok:
                with st.lock:   # latency of the handshake, not of the whole session
                    st.lat[kind][-1] = t_hs
            self.pause(rnd)

    # ------------------------------------------------------------- judging
    def judge_posts(self, records):
        """POSTs: delivered more than once, and failed ones explained or not."""
        st = self.stats
        posts = collections.defaultdict(list)
        gets = collections.Counter()
        for name, recs in records.items():
            for t, method, rid in recs:
                if method == "POST":
                    posts[rid].append((name, t))
                elif method == "GET":
                    gets[rid] += 1
        for rid, where in posts.items():
            if len(where) > 1:
                st.bump("double_post", "POST rid=%s reached %s" % (
                    rid, ", ".join("%s at %.2f" % (n, t - self.t0) for n, t in where)))
        st.c["GETs re-sent after a failed attempt"] = sum(1 for n in gets.values() if n > 1)
        # The server a failed POST was sent to: the one that recorded it, or
        # (when it was killed before reading the request) the access log's.
        logged = access_log_servers(self.gw.stdout_path, {p[1] for p in st.pending_posts})
        for kind, rid, t_send, t_recv, what in st.pending_posts:
            names = [n for n, _ in posts.get(rid, [])] + logged.get(rid, [])
            why = None
            for name in names:
                iv = self.real.overlaps(name, t_send, t_recv, KILL_SLOP)
                if iv:
                    why = "%s %s" % (name, iv[2])
            if why:
                st.bump("post_failed_down", what + " (%s)" % why)
                st.allowed[kind] += 1
            else:
                st.bump("post_failed_up", what + " (sent to %s, up)" % (", ".join(names) or "no server"))

    def spurious_downs(self):
        """Down events the gateway logged for servers the chaos did not touch."""
        out = []
        for name, ivs in self.view.all().items():
            for s, e, _ in ivs:
                if not self.real.overlaps(name, s - 4.0, s + 0.5):
                    out.append("%s down at %.1f s" % (name, s - self.t0))
        return out

    # ---------------------------------------------------------------- main
    def execute(self):
        t_start = time.monotonic()
        self.start()
        self.log("gateway pid %d, https %d, http %d, admin %d, redis %d; servers %s"
                 % (self.gw.pid, self.https, self.http, self.gw.port("admin"), self.redis.port,
                    ", ".join("%s:%d" % (n, s.port) for n, s in sorted(self.servers.items()))))
        time.sleep(1.0)
        fds = []
        for _ in range(10):
            fds.append(self.gw_fds())
            time.sleep(0.1)
        self.fd_start = min(fds)
        self.rss_start = self.gw_rss()
        self.t0 = time.monotonic()
        self.deadline = self.t0 + self.duration
        # Warm-up: about one whole chaos cycle (each child stopped once, each
        # server killed twice), capped at half the run, and at least 10%.
        self.warm_at = self.t0 + max(min(0.5 * self.duration, 40.0), 0.1 * self.duration)
        threads = []
        wid = 0

        def add(fn, *args):
            nonlocal wid
            wid += 1
            threads.append(self.worker(fn, wid, *args))

        k = self.kinds
        if "keepalive" in k:
            add(self.w_cookie, True, False)
            add(self.w_cookie, False, False)
        if "newconn" in k:
            add(self.w_cookie, False, True)
            add(self.w_cookie, True, True)
        if "post" in k:
            add(self.w_post)
            add(self.w_post)
        if "slow" in k:
            add(self.w_slow)
        if "learn" in k:
            add(self.w_learn, False)
            add(self.w_learn, True)
        if "source" in k:
            add(self.w_source, ["127.0.0.%d" % i for i in range(11, 15)])
            add(self.w_source, ["127.0.0.%d" % i for i in range(21, 25)])
        if "h2" in k:
            add(self.w_h2)
            add(self.w_h2)
        if "ws" in k:
            add(self.w_ws, False)
            add(self.w_ws, True)
        chaos = threading.Thread(target=self.chaos, name="chaos", daemon=True)
        chaos.start()
        for t in threads:
            t.start()
        self.log("load and chaos running for %d s (%d client threads)" % (self.duration, len(threads)))
        last = self.t0
        while time.monotonic() < self.deadline and not self.stop_event.is_set():
            time.sleep(0.2)
            now = time.monotonic()
            if now - last >= 30:
                last = now
                with self.stats.lock:
                    total = sum(self.stats.requests.values())
                self.log("  %4.0f s: %d requests, rss %s KiB, fds %s" % (
                    now - self.t0, total, self.samples[-1][1] if self.samples else "?",
                    self.samples[-1][2] if self.samples else "?"))
        t_end = time.monotonic()
        for t in threads:
            t.join(max(1.0, CLIENT_TIMEOUT * 2 + 10 - (time.monotonic() - t_end)))
            if t.is_alive():
                self.hung_workers.append(t.name)
        self.stop_event.set()
        chaos.join(30)
        self.load_seconds = time.monotonic() - self.t0
        # Idle: fds back to the baseline (pooled server connections expire after 3 s).
        fd_deadline = time.monotonic() + 30
        self.fd_end = None
        while time.monotonic() < fd_deadline and self.gw.proc.poll() is None:
            self.fd_end = self.gw_fds()
            if self.fd_end <= self.fd_start:
                break
            time.sleep(0.2)
        if self.gw.proc.poll() is None:
            self.rss_idle = self.gw_rss()
            try:
                self.metrics = self.fetch_metrics()
            except Exception as e:
                self.worker_errors.append("metrics: %s" % e)
        elif self.gateway_died is None:
            self.gateway_died = "gateway exited with %s" % self.gw.proc.returncode
        records = {}
        for s in self.in_proc:
            records[s.name] = s.take_records()
        for c in self.children:
            records[c.name] = c.take_records()
        self.judge_posts(records)
        self.gw_stderr = self.gw.stderr()
        self.access_log_path = self.gw.stdout_path
        self.exit_code = None
        if self.gw.proc.poll() is None:
            self.exit_code = self.gw.stop(signal.SIGTERM, timeout=30)
        else:
            self.exit_code = self.gw.stop()
        self.wall = time.monotonic() - t_start


# =========================================================================
# Report
# =========================================================================
class Report:
    def __init__(self, run, check_rss=True, rss_limit=0.10, rss_skip_reason=None):
        self.run = run
        st = run.stats
        self.counts = dict(st.c)
        self.failures = []
        self.figures = {}
        for key, _ in ASSERTED:
            self.figures[key] = st.c.get(key, 0)
        # RSS: the highest sample in the 5 s before warm-up vs in the last 5 s of load.
        def window(t1):
            vals = [r for t, r, _ in run.samples if t1 - 5.0 <= t <= t1 and r]
            return max(vals) if vals else None
        self.rss_warm = window(run.warm_at)
        self.rss_end = window(run.deadline)
        self.rss_peak = max((r for t, r, _ in run.samples if t >= run.warm_at), default=None)
        self.rss_idle = getattr(run, "rss_idle", None)
        self.rss_growth = ((self.rss_end - self.rss_warm) / self.rss_warm
                           if self.rss_warm and self.rss_end else None)
        self.rss_limit = rss_limit
        self.check_rss = check_rss
        self.rss_skip_reason = rss_skip_reason
        self.fd_start, self.fd_end = run.fd_start, run.fd_end
        self.fd_peak = max((f for _, _, f in run.samples), default=None)

        for key, label in ASSERTED:
            if self.figures[key]:
                self.failures.append("%s: %d" % (label, self.figures[key]))
        if self.rss_growth is None:
            if check_rss:
                self.failures.append("RSS: no samples (warm-up %s, end %s)" % (self.rss_warm,
                                                                             self.rss_end))
        elif check_rss and self.rss_growth > rss_limit:
            self.failures.append("gateway RSS grew %.1f%% after warm-up (%d -> %d KiB; bound %.0f%%)"
                                 % (100 * self.rss_growth, self.rss_warm, self.rss_end,
                                    100 * rss_limit))
        if self.fd_end is None or self.fd_end > self.fd_start:
            self.failures.append("gateway fds not back to the baseline: %s at start, %s at end"
                                 % (self.fd_start, self.fd_end))
        if run.gateway_died:
            self.failures.append(run.gateway_died)
        if run.exit_code != 0:
            self.failures.append("gateway exit code %s after SIGTERM (0 expected)" % run.exit_code)
        if run.hung_workers:
            self.failures.append("client threads still running after the deadline: %s"
                                 % run.hung_workers)
        if run.worker_errors:
            self.failures.append("harness errors: %d (first: %s)" % (
                len(run.worker_errors), run.worker_errors[0][-600:]))
        total = sum(st.requests.values())
        if total < 20 * run.duration / 10:
            self.failures.append("too few requests to mean anything: %d in %d s"
                                 % (total, run.duration))
        self.ok = not self.failures
        self.text = self.render()

    def render(self):
        run, st = self.run, self.run.stats
        out = []
        w = out.append
        w("")
        w("sag chaos soak: %d s of load (seed %d), %.0f s wall" % (run.duration, run.seed, run.wall))
        w("chaos: " + ", ".join("%d %s" % (n, k) for k, n in sorted(run.chaos_counts.items())))
        w("")
        w("%-20s %9s %9s %7s %7s %8s %8s" % ("kind", "requests", "ok", "killed", "failed",
                                             "p50 ms", "p99 ms"))
        for kind in sorted(st.requests) + ["all"]:
            if kind == "all":
                lat = [x for v in st.lat.values() for x in v]
                n, ok, al = (sum(st.requests.values()), sum(st.ok.values()),
                             sum(st.allowed.values()))
            else:
                lat = st.lat.get(kind, [])
                n, ok, al = st.requests[kind], st.ok[kind], st.allowed[kind]
            w("%-20s %9d %9d %7d %7d %8.1f %8.1f" % (kind, n, ok, al, n - ok - al,
                                                     1000 * pct(lat, 50), 1000 * pct(lat, 99)))
        w("(killed: cut mid-response, or a POST answered 502, because its server was killed "
          "during the request: allowed)")
        w("")
        w("asserted                                        value   result")
        for key, label in ASSERTED:
            v = self.figures[key]
            w("  %-44s %6d   %s" % (label, v, "ok" if v == 0 else "FAIL"))
        if self.rss_growth is not None:
            res = ("ok" if self.rss_growth <= self.rss_limit else "FAIL") if self.check_rss else \
                "not asserted: %s" % self.rss_skip_reason
            w("  %-44s %5.1f%%   %s (bound %.0f%%)" % ("gateway RSS growth after warm-up",
                                                      100 * self.rss_growth, res,
                                                      100 * self.rss_limit))
        else:
            w("  gateway RSS growth after warm-up: no samples")
        w("  %-44s %6s   %s" % ("gateway fds at start / end", "%s/%s" % (self.fd_start, self.fd_end),
                                "ok" if self.fd_end is not None and self.fd_end <= self.fd_start
                                else "FAIL"))
        w("  %-44s %6s   %s" % ("gateway exit code after SIGTERM", run.exit_code,
                                "ok" if run.exit_code == 0 else "FAIL"))
        w("")
        w("gateway memory: RSS %s KiB before load, %s KiB at warm-up (%.0f s), %s KiB peak after, "
          "%s KiB in the last 5 s of load, %s KiB idle after; fds peak %s"
          % (run.rss_start, self.rss_warm, run.warm_at - run.t0, self.rss_peak, self.rss_end,
             self.rss_idle, self.fd_peak))
        w("")
        w("allowed, reported:")
        info = [
            ("post_failed_down", "POSTs failed: their server was killed mid-request"),
            ("cut_by_kill", "GET/WebSocket cut mid-response by a kill"),
            ("moved_down", "sessions moved: their server was down"),
            ("moved_view_only", "  of which only the gateway saw it down"),
            ("GETs re-sent after a failed attempt", "GETs that reached two servers (retries)"),
            ("websocket messages echoed", "WebSocket messages echoed"),
        ]
        for key, label in info:
            w("  %-50s %8d" % (label, st.c.get(key, 0)))
        sp = run.spurious_downs()
        w("  %-50s %8d%s" % ("health-check downs without chaos", len(sp),
                              (" (" + "; ".join(sp[:6]) + ")") if sp else ""))
        m = run.metrics
        if m:
            w("")
            w("gateway metrics: " + ", ".join(self._metric_summary(m)))
        if self.failures:
            w("")
            w("FAILED:")
            for f in self.failures:
                w("  - " + f)
            w("")
            for key in [k for k, _ in ASSERTED] + ["post_failed_down", "cut_by_kill", "moved_down"]:
                d = st.details.get(key)
                if d and (key in [k for k, _ in ASSERTED]):
                    w("%s (first %d):" % (key, len(d)))
                    for line in d:
                        w("    " + line)
            rids = []
            for key, _ in ASSERTED:
                for line in st.details.get(key, []):
                    mm = re.search(r"rid=(\S+)", line)
                    if mm:
                        rids.append(mm.group(1))
            if rids:
                w("access log lines of those requests:")
                for line in grep_log(run.access_log_path, rids[:20]):
                    w("    " + line)
            lines = run.gw_stderr.splitlines()
            start = next((i for i, l in enumerate(lines)
                          if "ERROR: AddressSanitizer" in l or "runtime error:" in l
                          or "ERROR: LeakSanitizer" in l), None)
            if start is not None:
                w("gateway stderr (sanitizer report):")
                shown = lines[max(0, start - 5):start + 45]
            else:
                w("gateway stderr (tail):")
                shown = lines[-40:]
            for line in shown:
                w("    " + (line if len(line) <= 240 else line[:240] + "..."))
        else:
            w("")
            w("PASS")
        return "\n".join(out)

    @staticmethod
    def _metric_summary(m):
        from admin import series
        out = []
        for name in ("gateway_retries_total", "gateway_affinity_store_errors_total",
                     "gateway_persistence_total"):
            try:
                ss = series(m, name)
            except Exception:
                continue
            if not ss:
                continue
            if name == "gateway_persistence_total":
                agg = collections.Counter()
                for labels, v in ss.items():
                    agg[dict(labels).get("result", "?")] += v
                out.append("persistence " + " ".join("%s=%d" % kv for kv in sorted(agg.items())))
            else:
                out.append("%s=%d" % (name.replace("gateway_", "").replace("_total", ""),
                                      sum(ss.values())))
        return out


_LOG_LINE = re.compile(r'^\S+ \[[^\]]*\] \S+ [^/\s]+/(\S+) .*"\S+ \S*[?&]rid=([^&\s"]+)')


def access_log_servers(path, rids):
    """{rid: [server names the access log gives for it]} for the rids asked."""
    out = collections.defaultdict(list)
    if not rids:
        return out
    try:
        with open(path, errors="replace") as f:
            for line in f:
                if "rid=" not in line:
                    continue
                m = _LOG_LINE.match(line)
                if m and m.group(2) in rids and m.group(1) != "-":
                    out[m.group(2)].append(m.group(1))
    except OSError:
        pass
    return out


def grep_log(path, needles):
    out = []
    try:
        with open(path, errors="replace") as f:
            for line in f:
                if any(("rid=%s " % n) in line or ("rid=%s\"" % n) in line
                       or ("rid=%s&" % n) in line or line.rstrip().endswith(n) for n in needles):
                    out.append(line.rstrip())
                    if len(out) >= 40:
                        break
    except OSError:
        pass
    return out


def run(duration=600, seed=1, log=None, check_rss=True, rss_limit=0.10, rss_skip_reason=None,
        keep_logs=None, **kw):
    """Runs the soak; returns a Report (.ok, .failures, .text, .figures)."""
    if not os.environ.get("SAG_BIN_DIR"):
        os.environ["SAG_BIN_DIR"] = os.path.join(ROOT, "build", "bin")
    r = Run(duration, seed, log=log, **kw)
    try:
        r.execute()
    finally:
        r.stop_all()
        if keep_logs and r.gw is not None:
            os.makedirs(keep_logs, exist_ok=True)
            for src, dst in ((r.gw.stdout_path, "access.log"), (r.gw.stderr_path, "stderr.log"),
                             (r.gw.config_path, "gateway.yaml")):
                try:
                    shutil.copyfile(src, os.path.join(keep_logs, dst))
                except OSError:
                    pass
    return Report(r, check_rss=check_rss, rss_limit=rss_limit, rss_skip_reason=rss_skip_reason)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=int, default=600, help="seconds of load (default 600)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--kill-every", type=float, default=2.0)
    ap.add_argument("--stop-every", type=float, default=12.0)
    ap.add_argument("--redis-every", type=float, default=20.0)
    ap.add_argument("--no-rss", action="store_true", help="report RSS growth without asserting it")
    ap.add_argument("--kinds", default=",".join(KINDS),
                    help="client kinds to run (default all: %(default)s)")
    ap.add_argument("--no-chaos", action="store_true", help="load only: no kills, stops, restarts")
    ap.add_argument("--samples", help="write the gateway's RSS/fd samples (CSV) to this file")
    ap.add_argument("--keep-logs", metavar="DIR",
                    help="copy the gateway's access log (stdout) and stderr into DIR")
    ap.add_argument("--fake-child", help=argparse.SUPPRESS)
    ap.add_argument("--log", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.fake_child:
        child_main(a.fake_child, a.log)
        return 0

    def log(s):
        print("[soak] " + s, flush=True)

    rep = run(a.duration, a.seed, log=log, check_rss=not a.no_rss, keep_logs=a.keep_logs,
              rss_skip_reason="--no-rss" if a.no_rss else None,
              kill_every=a.kill_every, stop_every=a.stop_every, redis_every=a.redis_every,
              kinds=[k for k in a.kinds.split(",") if k], chaos=not a.no_chaos)
    print(rep.text, flush=True)
    if a.samples:
        with open(a.samples, "w") as f:
            f.write("seconds,rss_kib,fds\n")
            for t, rss, fds in rep.run.samples:
                f.write("%.1f,%s,%s\n" % (t - rep.run.t0, rss, fds))
    return 0 if rep.ok else 1


if __name__ == "__main__":
    sys.exit(main())
