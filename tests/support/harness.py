"""unittest glue shared by tests/integration/test_*.py.

    class T(GatewayTestCase):
        def test_x(self):
            s1, s2 = self.servers("s1", "s2")
            gw = self.gateway(basic_config([s1, s2]))

Fake servers and gateways started through these helpers are stopped when the
test ends. Stopping the gateway (SIGTERM) must end with exit code 0: a crash
or a hang during the test turns into a test error carrying the gateway's
stderr, so every test also checks a clean shutdown.
"""

import calendar
import collections
import http.client
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from client import *        # noqa: E402,F401,F403
from fake_server import *   # noqa: E402,F401,F403
from gateway import *       # noqa: E402,F401,F403
from client import Http11Client
from fake_server import FakeServer
from gateway import Gateway

LOCAL = "127.0.0.1"


class GatewayTestCase(unittest.TestCase):
    maxDiff = 4000

    def servers(self, *names):
        """Starts FakeServers with these names (stopped at cleanup)."""
        out = []
        for n in names:
            s = FakeServer(n)
            self.addCleanup(s.stop)
            out.append(s)
        return out if len(out) != 1 else out[0]

    def gateway(self, config, expect_clean_exit=True, **kw):
        """Starts a gateway (stopped with SIGTERM at cleanup; its exit code must be 0)."""
        gw = Gateway(config, **kw)

        def cleanup():
            if gw.proc is None:
                return
            already = gw.proc.poll() is not None
            rc = gw.stop(signal.SIGTERM, timeout=15)
            if expect_clean_exit and rc != 0:
                raise AssertionError("gateway %s with code %s (expected a clean exit 0)\n%s"
                                     % ("had already exited" if already else "exited after SIGTERM",
                                        rc, gw.describe()))
        self.addCleanup(cleanup)
        return gw

    def temp_dir(self, prefix):
        """A new directory in the temp dir, removed with its files when the
        test ends. Cleanups run last-in first-out: the gateways and servers
        started after this call are stopped before it goes."""
        d = tempfile.mkdtemp(prefix=prefix)
        self.addCleanup(shutil.rmtree, d, True)
        return d

    # ------------------------------------------------------------- requests
    def fresh_get(self, gw, listener, path="/", headers=(), timeout=10):
        """One request on a new connection (http.client); returns the Response."""
        c = Http11Client(LOCAL, gw.port(listener), tls=gw._listener_tls(listener), timeout=timeout)
        try:
            return c.request("GET", path, headers)
        finally:
            c.close()

    def sticky_cookies(self, gw, listener, want=2, tries=12):
        """{server name: SRV cookie value} for `want` distinct servers, from
        fresh cookie-less GETs of / on listener (round robin spreads them)."""
        out = {}
        for _ in range(tries):
            r = self.fresh_get(gw, listener, "/")
            self.assertStatus(r, 200, gw)
            v = srv_cookie(r)
            self.assertTrue(v, "no SRV cookie set on a request without one: %r" % r)
            out.setdefault(r.header("x-server"), v)
            if len(out) == want:
                return out
        self.fail("round robin reached %d of %d servers in %d requests: %r"
                  % (len(out), want, tries, out))

    def assertStatus(self, resp, status, gw=None):
        if resp.status != status:
            msg = "expected %s, got %r" % (status, resp)
            if gw is not None:
                msg += "\n" + gw.describe()
            self.fail(msg)


def srv_cookie(resp, name="SRV"):
    """The value of the Set-Cookie for `name` in resp, or None (fails on duplicates)."""
    cs = resp.set_cookies(name)
    if len(cs) > 1:
        raise AssertionError("more than one Set-Cookie for %s: %r" % (name, resp.headers))
    return cs[0]["value"] if cs else None


def json_log_time(entry):
    """The "time" of a JSON access-log entry ("2026-12-06T20:52:04.072Z",
    UTC, milliseconds optional) as seconds since the epoch."""
    t = entry["time"]
    ms = int(t[20:23]) if t[19:20] == "." else 0
    return calendar.timegm(time.strptime(t[:19], "%Y-%m-%dT%H:%M:%S")) + ms / 1000.0


def get_from(source_ip, port, path="/", headers=None):
    """One plain GET on a new connection bound to source_ip (127.0.0.x): an
    http.client response, body read."""
    c = http.client.HTTPConnection(LOCAL, port, timeout=10, source_address=(source_ip, 0))
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        r.read()
        return r
    finally:
        c.close()


def count_servers(responses):
    return collections.Counter(r.header("x-server") for r in responses)


def wait_until(pred, timeout=5.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def main():
    unittest.main(verbosity=2)
