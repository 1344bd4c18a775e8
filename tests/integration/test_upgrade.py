"""Binary upgrade (SIGUSR2, docs/behaviour.md#binary-upgrade): a new process
takes over the listening sockets and the memory store's entries; the old one
stops once the new one serves. No request fails, no connection is refused.

The new process is the old one's child, reparented when the old one exits:
each test stops it itself (through the pid in the pid file)."""

import http.client
import os
import signal
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from admin import Admin  # noqa: E402
from harness import LOCAL, GatewayTestCase, Http11Client, basic_config, main  # noqa: E402

NAMES = ("s1", "s2", "s3")
SESSIONS = ["up-%02d" % i for i in range(24)]


def setcookie(value):
    return "/setcookie?" + urllib.parse.urlencode({"name": "JSESSIONID", "value": value})


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (the old process is our child) counts as gone.
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def read_pid(path):
    try:
        with open(path) as f:
            text = f.read()
        return int(text) if text.endswith("\n") else None
    except (OSError, ValueError):
        return None


class Load:
    """Keep-alive and fresh-connection clients sending GETs with session
    cookies until stopped. A request on a reused keep-alive connection that
    the server closed while it was idle is sent again on a new connection,
    as every HTTP client does (RFC 9112 §9.3.1); any other error counts as
    a failure."""

    def __init__(self, port, owners, threads=4):
        self.port, self.owners = port, owners
        self.stop = threading.Event()
        self.ok = self.failed = self.moved = self.retried = 0
        self.errors = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(threads)]

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def count(self, r, v):
        with self.lock:
            self.ok += 1
            if r.header("x-server") != self.owners[v]:
                self.moved += 1

    def run(self, i):
        keep = i % 2 == 0
        c = None
        n = 0
        while not self.stop.is_set():
            v = SESSIONS[(i * 7 + n) % len(SESSIONS)]
            n += 1
            hdr = [("Cookie", "JSESSIONID=" + v)]
            try:
                if c is None:
                    c = Http11Client(LOCAL, self.port, timeout=10)
                    fresh = True
                else:
                    fresh = False
                try:
                    r = c.get("/", hdr)
                except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                    if fresh:
                        raise
                    c.close()
                    c = Http11Client(LOCAL, self.port, timeout=10)
                    with self.lock:
                        self.retried += 1
                    r = c.get("/", hdr)
                self.count(r, v)
                if not keep or r.header("connection") == "close":
                    c.close()
                    c = None
            except Exception as e:   # counted, reported by the test
                with self.lock:
                    self.failed += 1
                    self.errors.append(repr(e))
                if c is not None:
                    c.close()
                c = None
        if c is not None:
            c.close()


class UpgradeTest(GatewayTestCase):
    def setUp(self):
        self.s = self.servers(*NAMES)
        self.dir = self.temp_dir("sag-upgrade-")
        self.pid_path = os.path.join(self.dir, "sag.pid")
        self.new_pids = []
        self.addCleanup(self.stop_new)

    def stop_new(self):
        for pid in self.new_pids:
            if alive(pid):
                os.kill(pid, signal.SIGTERM)
                deadline = time.monotonic() + 15
                while alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.05)
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)

    def start_gateway(self):
        cfg = basic_config(self.s, tls=False, persistence={
            "learn": {"cookie": "JSESSIONID", "ttl": "30m"}},
            timeouts={"shutdown": "10s"}, admin={"bind": "127.0.0.1:0"})
        return self.gateway(cfg, args=["--pid-file", self.pid_path])

    def learn(self, gw):
        owners = {}
        for v in SESSIONS:
            c = Http11Client(LOCAL, gw.port("http"))
            owners[v] = c.get(setcookie(v)).header("x-server")
            c.close()
        self.assertEqual(len(set(owners.values())), 3, owners)
        return owners

    def wait_new_pid(self, old_pid, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = read_pid(self.pid_path)
            if pid and pid != old_pid:
                self.new_pids.append(pid)
                return pid
            time.sleep(0.02)
        return None

    def test_sigusr2_under_load_loses_no_request_and_no_session(self):
        gw = self.start_gateway()
        old_pid = gw.proc.pid
        owners = self.learn(gw)
        # Admin state set before the upgrade is the new process's too (a
        # drained server keeps its sessions).
        a = Admin(gw)
        self.assertEqual(a.put("/api/backends/app/servers/s2", {"state": "drain"}).status, 200)
        a.conn.close()
        load = Load(gw.port("http"), owners)
        load.start()
        time.sleep(0.5)
        t0 = time.monotonic()
        gw.send_signal(signal.SIGUSR2)
        new_pid = self.wait_new_pid(old_pid)
        self.assertIsNotNone(new_pid, "no new pid in the pid file\n" + gw.stderr())
        rc = gw.wait(15)
        took = time.monotonic() - t0
        time.sleep(0.5)   # load on the new process alone
        load.finish()
        self.assertEqual(rc, 0, "old process\n" + gw.stderr())
        self.assertTrue(alive(new_pid), gw.stderr())
        self.assertEqual(read_pid(self.pid_path), new_pid, "the old process removed the new one's pid file")
        print("\nupgrade: %.2f s from SIGUSR2 to the old process's exit; %d requests, %d retried "
              "on a closed idle connection" % (took, load.ok, load.retried), file=sys.stderr)
        self.assertEqual(load.failed, 0, "failed requests: %s\n%s" % (load.errors[:5], gw.stderr()))
        self.assertEqual(load.moved, 0, "requests that left their session's server")
        self.assertGreater(load.ok, 50)
        log = gw.stderr()
        self.assertIn("SIGUSR2: new process %d serves: closing listeners" % new_pid, log)
        self.assertIn("sockets inherited", log)
        self.assertIn("upgrade: %d of %d affinity entries from the old process taken over"
                      % (len(SESSIONS), len(SESSIONS)), log)
        # Served by the new process alone now: every session still on its server.
        for v, owner in owners.items():
            c = Http11Client(LOCAL, gw.port("http"))
            self.assertEqual(c.get("/", [("Cookie", "JSESSIONID=" + v)]).header("x-server"), owner, v)
            c.close()
        # The admin listener came along, and the admin state with it.
        c = Http11Client(LOCAL, gw.port("admin"))
        self.assertEqual(c.get("/healthz").status, 200)
        c.close()
        a = Admin(gw)
        self.addCleanup(a.conn.close)
        self.assertEqual(a.json("/api/backends/app/servers/s2")["state"], "drain")
        self.assertIn("upgrade: server app/s2 drain", log)

    def test_a_new_process_that_fails_leaves_the_old_one_serving(self):
        gw = self.start_gateway()
        old_pid = gw.proc.pid
        owners = self.learn(gw)
        # The new process can't start: its config no longer parses.
        with open(gw.config_path, "a") as f:
            f.write("no_such_key: 1\n")
        gw.send_signal(signal.SIGUSR2)
        deadline = time.monotonic() + 10
        while "upgrade failed" not in gw.stderr() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertIn("SIGUSR2: upgrade failed: new process", gw.stderr())
        self.assertIn("exited before serving (exit code 1); still serving", gw.stderr())
        self.assertEqual(read_pid(self.pid_path), old_pid)
        self.assertTrue(gw.alive())
        for v, owner in owners.items():
            c = Http11Client(LOCAL, gw.port("http"))
            self.assertEqual(c.get("/", [("Cookie", "JSESSIONID=" + v)]).header("x-server"), owner, v)
            c.close()


if __name__ == "__main__":
    main()
