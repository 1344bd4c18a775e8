"""Affinity entries shared by replicas through Redis (SPEC §4, issue 6 items
1-4): two gateways A and B with the same config and
`affinity_store: {type: redis}`, a real redis-server (tests/support/redis.py)
on a free port, and fake servers that name themselves in X-Server.

Learned sessions and source pins made on A route the same on B; a
redispatch on A is followed by B; Redis killed under load fails no request
and is caught up with when it returns; a restarted gateway keeps its
sessions (warm-up); a Sentinel failover is followed.
"""

import http.client
import os
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from harness import GatewayTestCase, LOCAL, Http11Client, basic_config, main, wait_until  # noqa: E402
from redis import RedisServer, Sentinel  # noqa: E402

NAMES = ("s1", "s2", "s3")
LEARN = {"learn": {"cookie": "JSESSIONID", "ttl": "30m"}}
SOURCE = {"source": {"ipv4_mask": 32, "ttl": "30m"}}


def learn_path(value):
    return "/setcookie?" + urllib.parse.urlencode({"name": "JSESSIONID", "value": value})


def get_from(source_ip, port, path="/", headers=None):
    """One plain GET on a new connection bound to source_ip (127.0.0.x)."""
    c = http.client.HTTPConnection(LOCAL, port, timeout=10, source_address=(source_ip, 0))
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        r.read()
        return r
    finally:
        c.close()


class RedisStoreTestCase(GatewayTestCase):
    def redis(self, **kw):
        r = RedisServer(**kw).start()
        self.addCleanup(r.close)
        return r

    def config(self, servers, persistence, redis_section, **kw):
        return basic_config(servers, tls=False, persistence=persistence,
                            affinity_store={"type": "redis", "redis": redis_section}, **kw)

    def pair(self, servers, persistence, redis_section, **kw):
        cfg = self.config(servers, persistence, redis_section, **kw)
        return self.gateway(cfg), self.gateway(cfg)

    def via(self, gw, session):
        r = self.fresh_get(gw, "http", "/", headers=[("Cookie", "JSESSIONID=" + session)])
        self.assertStatus(r, 200, gw)
        return r.header("x-server")

    def learn(self, gw, session):
        """Has the session cookie set through gw; returns the owner."""
        r = self.fresh_get(gw, "http", learn_path(session))
        self.assertStatus(r, 200, gw)
        return r.header("x-server")

    def assertRoutes(self, gw, session, owner, times=6):
        """`times` requests in a row reach `owner`: balancing alone would
        spread them (round robin), so this holds only through the pin."""
        seen = [self.via(gw, session) for _ in range(times)]
        self.assertEqual(seen, [owner] * times, "session %s through %s\n%s"
                         % (session, gw.ports, gw.describe()))

    def wait_routed(self, gw, session, owner, limit, streak=4):
        """Seconds until requests through gw reach owner, counted to the
        first of `streak` in a row (balancing alone never sends 4 requests
        in a row to one server: each worker's round robin moves on, and
        4 requests over 2 workers give one of them two); None when that
        does not start within `limit`."""
        t0 = time.monotonic()
        first, run = None, 0
        while True:
            now = time.monotonic() - t0
            if self.via(gw, session) == owner:
                if run == 0:
                    first = now
                run += 1
                if run == streak:
                    return first
            else:
                run = 0
                if now > limit:
                    return None
            time.sleep(0.005)


class SharedEntriesTest(RedisStoreTestCase):
    def test_learned_session_routes_the_same_on_b_within_500ms(self):
        redis = self.redis()
        s = self.servers(*NAMES)
        a, b = self.pair(s, LEARN, {"address": redis.address})
        owners = {}
        for i in range(9):
            session = "sess-%d" % i
            owner = self.learn(a, session)
            owners[session] = owner
            delay = self.wait_routed(b, session, owner, 0.5)
            self.assertIsNotNone(delay, "%s not routed to %s through B within 500 ms\n%s"
                                 % (session, owner, b.describe()))
            self.assertRoutes(b, session, owner)
        self.assertEqual(len(set(owners.values())), 3, owners)
        keys = redis.keys("gw:a:*")
        self.assertEqual(len(keys), 9, keys)
        self.assertIn("gw:a:app:L:sess-0", keys)
        self.assertEqual(redis.command("GET", "gw:a:app:L:sess-0"), owners["sess-0"])
        self.assertTrue(any(" learn-hit " in l for l in b.log_lines()), "B's log shows no learn-hit")

    def test_source_pin_made_on_a_holds_on_b(self):
        redis = self.redis()
        s = self.servers(*NAMES)
        a, b = self.pair(s, SOURCE, {"address": redis.address})
        owners = {}
        for i in range(2, 10):
            ip = "127.0.0.%d" % i
            owners[ip] = get_from(ip, a.port("http")).getheader("x-server")
        self.assertEqual(len(set(owners.values())), 3, owners)
        time.sleep(0.5)
        for ip, owner in owners.items():
            seen = [get_from(ip, b.port("http")).getheader("x-server") for _ in range(5)]
            self.assertEqual(seen, [owner] * 5, "source %s through B" % ip)

    def test_redispatch_on_a_is_followed_by_b(self):
        redis = self.redis()
        s = self.servers(*NAMES)
        by_name = {x.name: x for x in s}
        a, b = self.pair(s, LEARN, {"address": redis.address})
        owner = self.learn(a, "moving")
        self.assertIsNotNone(self.wait_routed(b, "moving", owner, 2.0))
        by_name[owner].stop()
        new_owner = self.via(a, "moving")  # A's attempt is refused: moved
        self.assertNotEqual(new_owner, owner)
        self.assertIn(" redispatch ", a.wait_log_lines(2)[-1])
        time.sleep(0.3)
        self.assertRoutes(b, "moving", new_owner)
        self.assertRoutes(a, "moving", new_owner)
        # The old server comes back: the session stays where it was moved.
        by_name[owner].start()
        self.assertRoutes(b, "moving", new_owner)
        self.assertEqual(redis.command("GET", "gw:a:app:L:moving"), new_owner)


class OutageTest(RedisStoreTestCase):
    def test_redis_killed_under_load(self):
        """Keep-alive clients on A and B for ~7 s while Redis is killed and
        comes back empty: zero errors, every pin holds, a session learned
        during the outage reaches B within 3 s of Redis returning, Redis is
        refilled, and the outage is logged and counted."""
        redis = self.redis()
        s = self.servers(*NAMES)
        a, b = self.pair(s, LEARN, {"address": redis.address, "timeout": "200ms"},
                         admin={"bind": "127.0.0.1:0"})
        owners = {}
        for i in range(6):
            owners["load-%d" % i] = self.learn(a, "load-%d" % i)
        for session, owner in owners.items():
            self.assertIsNotNone(self.wait_routed(b, session, owner, 2.0))

        stop = threading.Event()
        lock = threading.Lock()
        results = {"n": 0, "bad": []}

        def client(gw):
            c = Http11Client(LOCAL, gw.port("http"), timeout=10)
            n, bad = 0, []
            try:
                while not stop.is_set():
                    for session, owner in owners.items():
                        try:
                            r = c.get("/", headers=[("Cookie", "JSESSIONID=" + session)])
                            n += 1
                            if r.status != 200 or r.header("x-server") != owner:
                                bad.append((r.status, r.header("x-server"), owner))
                        except Exception as e:
                            bad.append(repr(e))
                            c.close()
                            c = Http11Client(LOCAL, gw.port("http"), timeout=10)
            finally:
                c.close()
            with lock:
                results["n"] += n
                results["bad"] += bad

        threads = [threading.Thread(target=client, args=(gw,)) for gw in (a, b, a, b)]
        for t in threads:
            t.start()
        try:
            time.sleep(1.0)
            redis.kill()
            time.sleep(1.0)
            outage_owner = self.learn(a, "outage")   # learned while Redis is gone
            self.assertRoutes(a, "outage", outage_owner, times=3)
            time.sleep(1.0)
            redis.start()                            # back, and empty
            back = time.monotonic()
            delay = self.wait_routed(b, "outage", outage_owner, 3.0)
            self.assertIsNotNone(delay, "the session learned during the outage did not reach B "
                                        "within 3 s of Redis returning\n" + b.describe())
            self.assertRoutes(b, "outage", outage_owner, times=3)
            self.assertTrue(wait_until(lambda: len(redis.keys("gw:a:*")) == 7,
                                       max(0.5, 3.0 - (time.monotonic() - back))),
                            "Redis not refilled within 3 s: %r" % redis.keys("gw:a:*"))
            time.sleep(1.5)
        finally:
            stop.set()
            for t in threads:
                t.join(15)
        self.assertGreater(results["n"], 100, "too few requests to mean anything")
        self.assertEqual(results["bad"], [], "errors or moved sessions during the outage (of %d)"
                         % results["n"])
        for gw in (a, b):
            err = gw.stderr()
            self.assertEqual(err.count("redis: lost"), 1, err)
            self.assertIn("after an outage", err)
            m = self.fresh_get(gw, "admin", "/metrics").text
            line = [l for l in m.splitlines() if l.startswith("gateway_affinity_store_errors_total")]
            self.assertTrue(line and int(float(line[0].split()[-1])) >= 1,
                            "the outage is not counted: %r" % line)

    def test_gateway_starts_without_redis_and_catches_up(self):
        redis = RedisServer()   # not started: nothing listens on its port
        self.addCleanup(redis.close)
        s = self.servers(*NAMES)
        a = self.gateway(self.config(s, LEARN, {"address": redis.address}))
        self.assertIn("not reachable at start-up", a.stderr())
        owner = self.learn(a, "early")
        self.assertRoutes(a, "early", owner)
        redis.start()
        self.assertTrue(wait_until(lambda: redis.command("GET", "gw:a:app:L:early") == owner, 5.0))


class RestartTest(RedisStoreTestCase):
    def test_restarted_gateway_keeps_its_sessions(self):
        redis = self.redis()
        s = self.servers(*NAMES)
        a = self.gateway(self.config(s, LEARN, {"address": redis.address}))
        owners = {"r-%d" % i: self.learn(a, "r-%d" % i) for i in range(12)}
        self.assertEqual(len(set(owners.values())), 3, owners)
        self.assertEqual(a.stop(), 0)
        a.start()
        for session, owner in owners.items():
            self.assertRoutes(a, session, owner)


class SentinelTest(RedisStoreTestCase):
    def test_failover_is_followed_and_sessions_kept(self):
        master = self.redis()
        replica = self.redis(replicaof=master)
        replica.wait_replication()
        sentinel = Sentinel("mymaster", master).start()
        self.addCleanup(sentinel.close)
        sentinel.wait_replicas(1)
        s = self.servers(*NAMES)
        section = {"sentinel": {"addresses": [sentinel.address], "master": "mymaster"}}
        cfg = self.config(s, LEARN, section)
        a, b = self.gateway(cfg), self.gateway(cfg)
        owners = {"f-%d" % i: self.learn(a, "f-%d" % i) for i in range(6)}
        for session, owner in owners.items():
            self.assertIsNotNone(self.wait_routed(b, session, owner, 2.0))
        self.assertTrue(wait_until(lambda: len(replica.keys("gw:a:*")) == 6, 5.0))

        master.kill()
        sentinel.wait_master(replica.port, timeout=40.0)
        # Both gateways write to the new master and hear each other again.
        after = self.learn(a, "after-failover")
        self.assertIsNotNone(self.wait_routed(b, "after-failover", after, 15.0),
                             "B did not get a session learned on A after the failover\n"
                             + a.describe() + "\n" + b.describe())
        self.assertTrue(wait_until(lambda: replica.command("GET", "gw:a:app:L:after-failover") == after, 10.0))
        for session, owner in owners.items():
            self.assertRoutes(a, session, owner, times=3)
            self.assertRoutes(b, session, owner, times=3)
        # Every session is in the new master: a restarted B loads them all.
        self.assertEqual(b.stop(), 0)
        b.start()
        owners["after-failover"] = after
        for session, owner in owners.items():
            self.assertRoutes(b, session, owner, times=3)
        self.assertIn("redis: lost", a.stderr())
        self.assertIn("after an outage", a.stderr())


if __name__ == "__main__":
    main()
