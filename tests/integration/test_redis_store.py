"""Affinity entries shared by replicas through Redis (SPEC §4, issue 6 items
1-4): two gateways A and B with the same config and
`affinity_store: {type: redis}`, a real redis-server (tests/support/redis.py)
on a free port, and fake servers that name themselves in X-Server.

Learned sessions and source pins made on A route the same on B; a
redispatch on A is followed by B; Redis killed, or paused (slow, not gone),
under load fails and delays no request and is caught up with when it
returns; a restarted gateway keeps its sessions (warm-up); a Sentinel
failover is followed.
"""

import os
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from harness import (GatewayTestCase, LOCAL, Http11Client, basic_config, get_from, main,  # noqa: E402
                     wait_until)
from admin import Admin, series  # noqa: E402
from redis import RedisServer, Sentinel  # noqa: E402

NAMES = ("s1", "s2", "s3")
LEARN = {"learn": {"cookie": "JSESSIONID", "ttl": "30m"}}
SOURCE = {"source": {"ipv4_mask": 32, "ttl": "30m"}}


def learn_path(value):
    return "/setcookie?" + urllib.parse.urlencode({"name": "JSESSIONID", "value": value})


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

    def via(self, gw, session, path="/"):
        r = self.fresh_get(gw, "http", path, headers=[("Cookie", "JSESSIONID=" + session)])
        self.assertStatus(r, 200, gw)
        return r.header("x-server")

    def learn(self, gw, session):
        """Has the session cookie set through gw; returns the owner."""
        r = self.fresh_get(gw, "http", learn_path(session))
        self.assertStatus(r, 200, gw)
        return r.header("x-server")

    def assertRoutes(self, gw, session, owner, times=6, path="/"):
        """`times` requests in a row reach `owner`: balancing alone would
        spread them (round robin), so this holds only through the pin."""
        seen = [self.via(gw, session, path) for _ in range(times)]
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

    def assertRoutedWithin(self, gw, session, owner, limit, what=""):
        """wait_routed, which must start its streak within `limit` seconds;
        returns the delay."""
        delay = self.wait_routed(gw, session, owner, limit)
        self.assertIsNotNone(delay, "%s%s not routed to %s through %s within %.1f s\n%s"
                             % (what, session, owner, gw.ports, limit, gw.describe()))
        self.assertLessEqual(delay, limit, "%s%s reached %s through %s only after %.2f s"
                             % (what, session, owner, gw.ports, delay))
        return delay

    def load(self, gws, owners):
        """Keep-alive clients, one thread per entry of gws, sending each
        session of `owners` in turn until stop() is called. Returns
        (stop, results): results["n"] requests, results["bad"] errors or
        moved sessions, results["slowest"] [(seconds, gateway ports)] of the
        slowest requests."""
        stop = threading.Event()
        lock = threading.Lock()
        results = {"n": 0, "bad": [], "slowest": []}

        def client(gw):
            c = Http11Client(LOCAL, gw.port("http"), timeout=10)
            n, bad, times = 0, [], []
            try:
                while not stop.is_set():
                    for session, owner in owners.items():
                        t0 = time.monotonic()
                        try:
                            r = c.get("/", headers=[("Cookie", "JSESSIONID=" + session)])
                            n += 1
                            if r.status != 200 or r.header("x-server") != owner:
                                bad.append((r.status, r.header("x-server"), owner))
                        except Exception as e:
                            bad.append(repr(e))
                            c.close()
                            c = Http11Client(LOCAL, gw.port("http"), timeout=10)
                        times.append((time.monotonic() - t0, gw.port("http")))
            finally:
                c.close()
            with lock:
                results["n"] += n
                results["bad"] += bad
                results["slowest"] = sorted(results["slowest"] + times, reverse=True)[:10]

        threads = [threading.Thread(target=client, args=(gw,)) for gw in gws]
        for t in threads:
            t.start()

        def stop_all():
            stop.set()
            for t in threads:
                t.join(15)
        self.addCleanup(stop_all)
        return stop_all, results


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
            self.assertRoutedWithin(b, session, owner, 0.5)
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
        # Every pin is in Redis, under the source kind, naming its server.
        self.assertTrue(wait_until(lambda: len(redis.keys("gw:a:app:S:*")) == len(owners), 2.0),
                        "want %d source keys in Redis: %r" % (len(owners), redis.keys()))
        self.assertEqual(sorted(redis.command("GET", k) for k in redis.keys("gw:a:app:S:*")),
                         sorted(owners.values()))
        # B started in the same round robin state as A, so it could repeat
        # A's choices by itself: a few unpinned requests first put it out of
        # step, and B's log must show that each choice came from the pin.
        for i in range(2, 6):
            self.assertEqual(get_from("127.0.1.%d" % i, b.port("http")).status, 200)
        time.sleep(0.5)
        for ip, owner in owners.items():
            seen = [get_from(ip, b.port("http")).getheader("x-server") for _ in range(5)]
            self.assertEqual(seen, [owner] * 5, "source %s through B" % ip)
        lines = b.wait_log_lines(4 + 5 * len(owners))
        pinned = [l for l in lines if l.split(" ", 1)[0].rsplit(":", 1)[0] in owners]
        self.assertEqual(len(pinned), 5 * len(owners), lines)
        self.assertEqual([l for l in pinned if " source-hit " not in l], [],
                         "B chose these itself instead of following A's source pins")

    def test_redispatch_on_a_is_followed_by_b(self):
        redis = self.redis()
        s = self.servers(*NAMES)
        by_name = {x.name: x for x in s}
        a, b = self.pair(s, LEARN, {"address": redis.address})
        owner = self.learn(a, "moving")
        self.assertRoutedWithin(b, "moving", owner, 2.0)
        by_name[owner].stop()
        new_owner = self.via(a, "moving")  # A's attempt is refused: moved
        self.assertNotEqual(new_owner, owner)
        self.assertIn(" redispatch ", a.wait_log_lines(2)[-1])
        time.sleep(0.3)
        # B would redispatch by itself too (its attempt at the old owner is
        # refused) and land on the new owner half the time: only its log
        # tells whether it followed A's choice (a learn-hit) or made its own.
        self.assertRoutes(b, "moving", new_owner, path="/after-move")
        self.assertRoutes(a, "moving", new_owner)
        # The old server comes back: the session stays where it was moved.
        by_name[owner].start()
        self.assertRoutes(b, "moving", new_owner, path="/after-move")
        self.assertEqual(redis.command("GET", "gw:a:app:L:moving"), new_owner)
        lines = wait_until(lambda: (lambda ls: ls if len([l for l in ls if "/after-move" in l]) == 12
                                    else None)(b.log_lines()), 5.0) or b.log_lines()
        moved = [l for l in lines if "/after-move" in l]
        self.assertEqual(len(moved), 12, lines)
        self.assertEqual([l for l in lines if " redispatch " in l], [],
                         "B redispatched the session itself instead of following A")
        self.assertEqual([l for l in moved if " learn-hit " not in l], [],
                         "B did not route the moved session by the entry A wrote")


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
            self.assertRoutedWithin(b, session, owner, 2.0)

        stop, results = self.load((a, b, a, b), owners)
        try:
            time.sleep(1.0)
            redis.kill()
            time.sleep(1.0)
            outage_owner = self.learn(a, "outage")   # learned while Redis is gone
            self.assertRoutes(a, "outage", outage_owner, times=3)
            time.sleep(1.0)
            redis.start()                            # back, and empty
            back = time.monotonic()
            self.assertRoutedWithin(b, "outage", outage_owner, 3.0,
                                    "after Redis returned, the session learned during the outage: ")
            self.assertRoutes(b, "outage", outage_owner, times=3)
            self.assertTrue(wait_until(lambda: len(redis.keys("gw:a:*")) == 7,
                                       max(0.5, 3.0 - (time.monotonic() - back))),
                            "Redis not refilled within 3 s: %r" % redis.keys("gw:a:*"))
            time.sleep(1.5)
        finally:
            stop()
        self.assertGreater(results["n"], 100, "too few requests to mean anything")
        self.assertEqual(results["bad"], [], "errors or moved sessions during the outage (of %d)"
                         % results["n"])
        for gw in (a, b):
            err = gw.stderr()
            self.assertEqual(err.count("redis: lost"), 1, err)
            self.assertIn("after an outage", err)
            admin = Admin(gw)
            self.addCleanup(admin.close)
            errors = series(admin.metrics(), "gateway_affinity_store_errors_total")
            self.assertTrue(errors and sum(errors.values()) >= 1,
                            "the outage is not counted: %r" % errors)

    def test_redis_paused_under_load(self):
        """Redis slow, not gone: SIGSTOPped for ~2 s (its sockets stay open,
        nothing answers) while keep-alive clients run on A and B. No request
        fails or moves, none waits for Redis (the local copy answers every
        lookup and writes are queued), and a session learned during the
        pause reaches B within 3 s of Redis resuming."""
        max_latency = 0.5      # redis.timeout is 200 ms; waiting on Redis at all shows
        redis = self.redis()
        s = self.servers(*NAMES)
        a, b = self.pair(s, LEARN, {"address": redis.address, "timeout": "200ms"})
        owners = {"slow-%d" % i: self.learn(a, "slow-%d" % i) for i in range(6)}
        for session, owner in owners.items():
            self.assertRoutedWithin(b, session, owner, 2.0)

        stop, results = self.load((a, b, a, b), owners)
        try:
            time.sleep(1.0)
            redis.pause()
            paused = time.monotonic()
            try:
                t0 = time.monotonic()
                paused_owner = self.learn(a, "paused")
                learn_time = time.monotonic() - t0
                self.assertLess(learn_time, max_latency, "learning a session through A took "
                                "%.3f s while Redis was paused" % learn_time)
                self.assertRoutes(a, "paused", paused_owner, times=3)
                # The control: B cannot know it yet (so Redis really is held up).
                self.assertIsNone(self.wait_routed(b, "paused", paused_owner, 0.5),
                                  "B routed a session learned during the pause: Redis was not "
                                  "paused")
                time.sleep(max(0.0, 2.0 - (time.monotonic() - paused)))
            finally:
                redis.resume()
            self.assertRoutedWithin(b, "paused", paused_owner, 3.0,
                                    "after Redis resumed, the session learned during the pause: ")
            self.assertRoutes(b, "paused", paused_owner, times=3)
            time.sleep(1.0)
        finally:
            stop()
        self.assertGreater(results["n"], 100, "too few requests to mean anything")
        self.assertEqual(results["bad"], [], "errors or moved sessions while Redis was paused "
                         "(of %d)" % results["n"])
        slowest = results["slowest"]
        self.assertLess(slowest[0][0], max_latency,
                        "requests waited on a paused Redis: the slowest of %d took (s, port): %r "
                        "(A %d, B %d)" % (results["n"], slowest, a.port("http"), b.port("http")))
        self.assertEqual(redis.command("GET", "gw:a:app:L:paused"), paused_owner)

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
            self.assertRoutedWithin(b, session, owner, 2.0)
        self.assertTrue(wait_until(lambda: len(replica.keys("gw:a:*")) == 6, 5.0))

        master.kill()
        sentinel.wait_master(replica.port, timeout=40.0)
        # Both gateways write to the new master and hear each other again.
        after = self.learn(a, "after-failover")
        self.assertRoutedWithin(b, "after-failover", after, 15.0,
                                "after the failover, learned on A (A: %s): " % a.describe())
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
