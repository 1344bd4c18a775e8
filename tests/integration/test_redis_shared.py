"""Admin state and TLS session tickets shared between replicas through Redis
(issue 6, items 5-7): two gateways A and B with the same config and
`affinity_store: {type: redis}`, each with its own admin listener, and a
real redis-server on a free port. Also: with `type: memory` (no Redis at
all) tickets still resume on the same gateway.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from harness import GatewayTestCase, LOCAL, basic_config, main, wait_until  # noqa: E402
from admin import Admin  # noqa: E402
from redis import RedisServer  # noqa: E402  (tests/support/redis.py)

# ------------------------------------------------------------------ helpers
def s_client(port, version, sess_out=None, sess_in=None, request=True, timeout=20):
    """Runs `openssl s_client` against 127.0.0.1:port with -tls1_2 or -tls1_3.
    With `request`, sends one GET with Connection: close and reads the answer
    (-ign_eof: s_client waits for the server to close), so TLS 1.3 tickets,
    which arrive after the handshake, are in before -sess_out is written.
    Returns the combined output."""
    args = ["openssl", "s_client", "-connect", "%s:%d" % (LOCAL, port), "-servername", "localhost",
            "-" + version, "-ign_eof"]
    if sess_out:
        args += ["-sess_out", sess_out]
    if sess_in:
        args += ["-sess_in", sess_in]
    data = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n" if request else b""
    p = subprocess.run(args, input=data, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout)
    return p.stdout.decode("utf-8", "replace")


def reused(output):
    """True for "Reused, TLSv1.x", False for "New, TLSv1.x"; fails otherwise."""
    for line in output.splitlines():
        if line.startswith("Reused,"):
            return True
        if line.startswith("New,"):
            return False
    raise AssertionError("no New/Reused line in s_client output:\n" + output)


VERSIONS = ("tls1_2", "tls1_3")


class AdminMixin:
    def admin(self, gw):
        """An Admin client for gw's admin listener (closed at cleanup)."""
        a = Admin(gw)
        self.addCleanup(a.close)
        return a

    def put_server(self, admin, name, body):
        r = admin.put("/api/backends/app/servers/" + name, body)
        self.assertEqual(r.status, 200, r.text)


class RedisSharedTest(AdminMixin, GatewayTestCase):
    def setUp(self):
        self.redis = RedisServer().start()
        self.addCleanup(self.redis.close)
        self.tmp = tempfile.mkdtemp(prefix="sag-sess-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.backends = self.servers("s1", "s2")

    def config(self, prefix="it:"):
        return basic_config(self.backends, plain=False, admin={"bind": "127.0.0.1:0"},
                            affinity_store={"type": "redis",
                                            "redis": {"address": "127.0.0.1:%d" % self.redis.port,
                                                      "key_prefix": prefix}})

    def test_admin_state_reaches_the_other_replica_and_survives_its_restart(self):
        a_gw = self.gateway(self.config())
        b_gw = self.gateway(self.config())
        a, b = self.admin(a_gw), self.admin(b_gw)
        self.assertEqual(b.server("app", "s1")["state"], "ready")

        self.put_server(a, "s1", {"state": "drain"})
        t0 = time.monotonic()
        self.assertTrue(wait_until(lambda: b.server("app", "s1")["state"] == "drain", timeout=1.0,
                                   interval=0.02),
                        "drain set on A not on B within 1 s\n" + b_gw.describe())
        print("drain visible on B after %.0f ms" % ((time.monotonic() - t0) * 1000), file=sys.stderr)
        self.assertEqual(self.redis.command("HGET", "it:admin:app:s1", "state"), "drain")

        self.put_server(a, "s2", {"weight": 42})
        self.assertTrue(wait_until(lambda: b.server("app", "s2")["weight"] == 42, timeout=1.0,
                                   interval=0.02),
                        "weight set on A not on B within 1 s\n" + b_gw.describe())
        # And from B to A.
        self.put_server(b, "s2", {"state": "maint"})
        self.assertTrue(wait_until(lambda: a.server("app", "s2")["state"] == "maint", timeout=1.0,
                                   interval=0.02))

        # B restarts: the state is there as soon as it listens.
        b.close()
        self.assertEqual(b_gw.stop(), 0, b_gw.describe())
        b2_gw = self.gateway(self.config())
        b2 = self.admin(b2_gw)
        s1, s2 = b2.server("app", "s1"), b2.server("app", "s2")
        self.assertEqual(s1["state"], "drain", b2_gw.describe())
        self.assertEqual(s2["state"], "maint", b2_gw.describe())
        self.assertEqual(s2["weight"], 42, b2_gw.describe())
        self.assertEqual(a.server("app", "s1")["state"], "drain")

        # Back to ready on the restarted one reaches A.
        self.put_server(b2, "s1", {"state": "ready"})
        self.assertTrue(wait_until(lambda: a.server("app", "s1")["state"] == "ready", timeout=1.0,
                                   interval=0.02))

    def test_tls_session_resumes_on_the_other_replica(self):
        a = self.gateway(self.config())
        b = self.gateway(self.config())
        # Another cluster (its own key prefix, so its own ticket keys): the control.
        other = self.gateway(self.config(prefix="other:"))
        for v in VERSIONS:
            with self.subTest(version=v):
                sess = os.path.join(self.tmp, "a-%s.pem" % v)
                first = s_client(a.port("https"), v, sess_out=sess)
                self.assertFalse(reused(first), first)
                self.assertIn("HTTP/1.1 200", first)
                self.assertTrue(os.path.getsize(sess) > 0, first)
                out = s_client(b.port("https"), v, sess_in=sess)
                self.assertTrue(reused(out), "session from A not resumed on B (%s):\n%s" % (v, out))
                self.assertIn("HTTP/1.1 200", out)
                out = s_client(other.port("https"), v, sess_in=sess)
                self.assertFalse(reused(out), "resumed under another cluster's keys (%s):\n%s" % (v, out))

    def test_tls_session_resumes_after_restart(self):
        a = self.gateway(self.config())
        sessions = {}
        for v in VERSIONS:
            sessions[v] = os.path.join(self.tmp, "r-%s.pem" % v)
            self.assertFalse(reused(s_client(a.port("https"), v, sess_out=sessions[v])))
        self.assertEqual(a.stop(), 0, a.describe())
        a2 = self.gateway(self.config())
        for v in VERSIONS:
            with self.subTest(version=v):
                out = s_client(a2.port("https"), v, sess_in=sessions[v])
                self.assertTrue(reused(out), "not resumed after a restart (%s):\n%s" % (v, out))


    def test_redis_down_at_start_then_keys_adopted(self):
        self.redis.kill()
        a = self.gateway(self.config())   # starts anyway, with a local ticket key
        sess = os.path.join(self.tmp, "down.pem")
        out = s_client(a.port("https"), "tls1_3", sess_out=sess)
        self.assertIn("HTTP/1.1 200", out)
        self.assertTrue(reused(s_client(a.port("https"), "tls1_3", sess_in=sess)))
        self.redis.start()
        self.assertTrue(wait_until(lambda: self.redis.keys("it:tls:ticket:*"), timeout=10),
                        "A did not write its ticket keys once Redis was back\n" + a.describe())
        b = self.gateway(self.config())
        # A adopted Redis's keys: what it issues now resumes on B, and the
        # session made under its local key still resumes on A.
        self.assertTrue(wait_until(lambda: reused(self._hop(a, b)), timeout=10, interval=0.2),
                        a.describe())
        self.assertTrue(reused(s_client(a.port("https"), "tls1_3", sess_in=sess)))

    def _hop(self, a, b, version="tls1_3"):
        sess = os.path.join(self.tmp, "hop.pem")
        s_client(a.port("https"), version, sess_out=sess)
        return s_client(b.port("https"), version, sess_in=sess)


class MemoryTicketsTest(AdminMixin, GatewayTestCase):
    """`type: memory`: no Redis anywhere, tickets are local and still work."""

    def test_tickets_resume_on_the_same_gateway(self):
        tmp = tempfile.mkdtemp(prefix="sag-sess-")
        self.addCleanup(shutil.rmtree, tmp, True)
        backends = self.servers("s1", "s2")
        cfg = basic_config(backends, plain=False, admin={"bind": "127.0.0.1:0"},
                           affinity_store={"type": "memory"})
        a = self.gateway(cfg)
        other = self.gateway(cfg)
        for v in VERSIONS:
            with self.subTest(version=v):
                sess = os.path.join(tmp, "m-%s.pem" % v)
                first = s_client(a.port("https"), v, sess_out=sess)
                self.assertFalse(reused(first), first)
                # A ticket came (not only a session id for the server's cache).
                self.assertIn("TLS session ticket:", first)
                out = s_client(a.port("https"), v, sess_in=sess)
                self.assertTrue(reused(out), "not resumed on the same gateway (%s):\n%s" % (v, out))
                # Another process has its own local keys.
                out = s_client(other.port("https"), v, sess_in=sess)
                self.assertFalse(reused(out), out)
        # Admin changes stay local and work without Redis.
        admin_a, admin_other = self.admin(a), self.admin(other)
        self.put_server(admin_a, "s1", {"state": "drain"})
        self.assertEqual(admin_a.server("app", "s1")["state"], "drain")
        self.assertEqual(admin_other.server("app", "s1")["state"], "ready")


if __name__ == "__main__":
    main()
