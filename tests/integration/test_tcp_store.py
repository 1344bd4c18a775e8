"""TCP source entries in the affinity store (SPEC §8 with §4): a `mode: tcp`
backend with `balance: roundrobin` and `persistence.source`, in front of
small servers that say their name first (test_tcp.NamedEcho), and clients
bound to 127.0.0.2..9 (and 127.0.1.2..9).

- Two gateways on one real redis-server (`affinity_store.type: redis`)
  agree on every client address, whichever gateway made the entry; a third
  gateway under another key prefix on the same Redis, asked in the same
  order, disagrees (so the agreement comes from the shared entries, not
  from two round robins that happen to match).
- `maint` set through the admin API moves only the maint server's clients;
  the others stay put, the moved ones stay on their new server, also once
  the old one is ready again.
- Connections from one address that arrive together, before any entry
  exists, all get one server, with two workers accepting them (end to end
  only: through real sockets the race window is too short to hit, so this
  passes with a plain put too; the claim itself is proven by
  MemoryStore.ClaimFilesOnlyTheFirstAndEveryoneLearnsIt,
  ResolverOrderTest.AFirstConnectionThatLostTheRaceJoinsTheWinnersServer and
  RedisStoreTest.ClaimsOnTwoReplicasSettleOnTheFirstRedisApplied).
- `affinity_store.state_file` keeps the memory store's TCP source entries
  across SIGTERM and a new process; a gateway without it, asked in the same
  order, disagrees.

Replication is awaited by polling the other gateway (its access log says
source-hit for a probe address pinned after the clients), never by a fixed
sleep, and never by watching Redis alone: the announcement on Redis can be
seen by a test's subscriber some milliseconds before the other gateway has
applied it.
"""

import os
import re
import shutil
import socket
import sys
import tempfile
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from admin import Admin  # noqa: E402
from harness import GatewayTestCase, main, wait_until  # noqa: E402
from redis import RedisServer, affinity_key  # noqa: E402
from test_tcp import CLIENTS, NamedEcho, name_from, tcp_config  # noqa: E402

OTHERS = ["127.0.1.%d" % i for i in range(2, 10)]   # fresh addresses for the reverse direction
PROBES_AB = ["127.0.2.%d" % i for i in range(2, 62)]   # see wait_replicated
PROBES_BA = ["127.0.3.%d" % i for i in range(2, 62)]
SECRET = "tcp-store-test-key-secret"


def source_key(ip, secret=SECRET, prefix="gw:"):
    """The Redis key of backend pool's source entry for an IPv4 address (mask 32)."""
    return affinity_key(b"4" + bytes(int(x) for x in ip.split(".")), kind="S", backend="pool",
                        secret=secret, prefix=prefix)


class TcpStoreTest(GatewayTestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="sag-tcp-store-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.echoes = []
        for n in ("e1", "e2", "e3"):
            e = NamedEcho(n)
            self.addCleanup(e.stop)
            self.echoes.append(e)

    def config(self, **kw):
        return tcp_config([(e.name, e.port, 100) for e in self.echoes], balance="roundrobin", **kw)

    def owners(self, gw, ips):
        """{ip: server name}, connecting from each ip in the order given."""
        return {ip: name_from(gw.port("tcp"), ip) for ip in ips}

    def assertSpread(self, owners):
        self.assertEqual(len(set(owners.values())), 3, "round robin should use every server: %r" % owners)

    def assertOwners(self, gw, owners, order, what):
        got = self.owners(gw, order)
        self.assertEqual(got, {ip: owners[ip] for ip in order}, "%s\n%s" % (what, gw.describe()))

    def assertControlDiffers(self, make_cfg, owners, order, attempts=3):
        """A gateway that does not share the entries, asked in `order`,
        disagrees somewhere: the test above it could have failed. Which of
        the two workers takes a connection varies from run to run, so one
        control can agree by chance (seen once, under ASan); up to
        `attempts` fresh ones (make_cfg(k): the k-th one's config) are
        asked, and all of them agreeing fails."""
        want = {ip: owners[ip] for ip in order}
        for k in range(attempts):
            control = self.gateway(make_cfg(k))
            got = self.owners(control, order)
            control.stop()
            if got != want:
                return
        self.fail("%d gateways without the entries agree anyway: the check proves nothing" % attempts)

    # ------------------------------------------------------------ 1: redis
    def redis_config(self, redis, prefix="gw:"):
        secret_file = os.path.join(self.tmp, "key-secret")
        with open(secret_file, "w") as f:
            f.write(SECRET + "\n")
        cfg = self.config()
        cfg["affinity_store"] = {"type": "redis", "redis": {"address": redis.address, "key_prefix": prefix,
                                                            "key_secret_file": secret_file}}
        return cfg

    def wait_replicated(self, src, dst, probes):
        """Waits until what src pinned so far is in dst's local copy: src pins
        the probe addresses now (after the clients), and dst is asked from
        one probe after another until its access log says source-hit for
        one. src's changes reach dst in the order src made them (one Redis
        script each, one pub/sub connection), so the clients' entries are in
        by then. A probe dst did not know yet becomes an entry of its own:
        each probe is used once."""
        self.owners(src, probes)
        left = iter(probes)

        def probe_hit():
            p = next(left, None)
            self.assertIsNotNone(p, "no probe was a source-hit on the other gateway\n" + dst.describe())
            name_from(dst.port("tcp"), p)
            line = wait_until(lambda: [l for l in dst.log_lines() if l.startswith(p + ":")], interval=0.01)
            self.assertTrue(line, "no access-log line for %s\n%s" % (p, dst.describe()))
            return " source-hit " in line[0]
        self.assertTrue(wait_until(probe_hit, timeout=3, interval=0.02), dst.describe())

    def test_two_gateways_share_source_entries_through_redis(self):
        redis = RedisServer().start()
        self.addCleanup(redis.close)
        cfg = self.redis_config(redis)
        a = self.gateway(cfg)
        b = self.gateway(cfg)

        # A decides, B follows (asked in the reverse order: its own round
        # robin would hand the servers out differently).
        on_a = self.owners(a, CLIENTS)
        self.assertSpread(on_a)
        self.wait_replicated(a, b, PROBES_AB)
        for ip in CLIENTS:   # Redis holds them, by keyed hash, naming the server
            self.assertEqual(redis.command("GET", source_key(ip)), on_a[ip], ip)
        self.assertOwners(b, on_a, CLIENTS[::-1], "B does not follow A's entries")
        self.assertOwners(a, on_a, CLIENTS, "A changed its mind")

        # The other way round, for fresh addresses.
        on_b = self.owners(b, OTHERS)
        self.assertSpread(on_b)
        self.wait_replicated(b, a, PROBES_BA)
        self.assertOwners(a, on_b, OTHERS[::-1], "A does not follow B's entries")

        # Same Redis, another key prefix: nothing shared, and it disagrees.
        self.assertControlDiffers(lambda k: self.redis_config(redis, prefix="other%d:" % k), on_a,
                                  CLIENTS[::-1])

    # ------------------------------------------------------------ 2: maint
    def test_parallel_first_connections_from_one_address_get_one_server(self):
        cfg = self.config()
        cfg["workers"] = 2
        gw = self.gateway(cfg)
        port = gw.port("tcp")
        for ip in CLIENTS:
            # 12 connections at once, none before the others: sockets opened,
            # then connected together when all are ready.
            socks = []
            for _ in range(12):
                s = socket.socket()
                s.settimeout(10)
                s.bind((ip, 0))
                socks.append(s)
            go = threading.Barrier(len(socks))
            names = [None] * len(socks)

            def connect(i):
                go.wait()
                socks[i].connect(("127.0.0.1", port))
                names[i] = socks[i].makefile("rb").readline().decode().strip()
            threads = [threading.Thread(target=connect, args=(i,)) for i in range(len(socks))]
            for t in threads:
                t.start()
            for t in threads:
                t.join(15)
            for s in socks:
                s.close()
            self.assertEqual(len(set(names)), 1, "%s got %s" % (ip, names))
            self.assertIn(names[0], ("e1", "e2", "e3"))
            self.assertEqual(name_from(port, ip), names[0], ip)

    def test_maint_moves_only_that_servers_clients(self):
        gw = self.gateway(self.config(admin=True))
        admin = Admin(gw)
        self.addCleanup(admin.close)
        before = self.owners(gw, CLIENTS)
        self.assertSpread(before)
        self.assertOwners(gw, before, CLIENTS[::-1], "not sticky before maint")
        # The server holding the most of them (at least one, and not all: 3 in use).
        victim = max(("e1", "e2", "e3"), key=lambda n: list(before.values()).count(n))
        r = admin.put("/api/backends/pool/servers/" + victim, {"state": "maint"})
        self.assertEqual(r.status, 200, r.text)
        self.assertEqual(admin.server("pool", victim)["state"], "maint")

        after = self.owners(gw, CLIENTS)
        for ip in CLIENTS:
            if before[ip] == victim:
                self.assertNotEqual(after[ip], victim, "%s stayed on the maint server" % ip)
            else:
                self.assertEqual(after[ip], before[ip], "%s moved though its server is ready" % ip)
        moved = {ip: after[ip] for ip in CLIENTS if before[ip] == victim}
        self.assertTrue(moved)
        # The redispatch was written back: the moved ones stay, twice over,
        # and still once the server is ready again.
        self.assertOwners(gw, after, CLIENTS[::-1], "clients not sticky after the redispatch")
        r = admin.put("/api/backends/pool/servers/" + victim, {"state": "ready"})
        self.assertEqual(r.status, 200, r.text)
        self.assertOwners(gw, after, CLIENTS, "moved clients went back to the ready server")
        # Ready again, it takes new addresses.
        self.assertIn(victim, set(self.owners(gw, OTHERS).values()))

    def test_drain_keeps_pinned_clients_and_takes_no_new_ones(self):
        gw = self.gateway(self.config(admin=True))
        admin = Admin(gw)
        self.addCleanup(admin.close)
        before = self.owners(gw, CLIENTS)
        self.assertSpread(before)
        victim = before[CLIENTS[0]]
        r = admin.put("/api/backends/pool/servers/" + victim, {"state": "drain"})
        self.assertEqual(r.status, 200, r.text)
        self.assertOwners(gw, before, CLIENTS[::-1], "a pinned client left the draining server")
        self.assertNotIn(victim, set(self.owners(gw, OTHERS).values()), "a draining server took a new address")

    # ------------------------------------------------------- 3: state file
    def test_state_file_keeps_tcp_source_entries_across_a_restart(self):
        path = os.path.join(self.tmp, "affinity.state")
        cfg = self.config()
        cfg["affinity_store"] = {"type": "memory", "state_file": path}
        gw = self.gateway(cfg)
        before = self.owners(gw, CLIENTS)
        self.assertSpread(before)

        self.assertEqual(gw.stop(), 0, gw.describe())
        saved = re.search(r"state file %s: (\d+) affinity entries saved" % re.escape(path), gw.stderr())
        self.assertTrue(saved, gw.stderr())
        # (Plus the harness's readiness probe from 127.0.0.1.)
        self.assertGreaterEqual(int(saved.group(1)), len(CLIENTS), gw.stderr())
        self.assertTrue(os.path.exists(path))

        gw.start()
        self.assertRegex(gw.stderr(), r"state file %s: \d+ of \d+ affinity entries loaded" % re.escape(path))
        # The reverse order: a fresh round robin would hand them out differently.
        self.assertOwners(gw, before, CLIENTS[::-1], "source entries lost across the restart")
        self.assertOwners(gw, before, CLIENTS, "not sticky after the restart")

        # Without the state file, the same order disagrees.
        self.assertControlDiffers(lambda k: self.config(), before, CLIENTS[::-1])


if __name__ == "__main__":
    main()
