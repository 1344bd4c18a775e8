"""Affinity entries shared by replicas through Redis (docs/behaviour.md#persistence, issue 6 items
1-4): two gateways A and B with the same config and
`affinity_store: {type: redis}`, a real redis-server (tests/support/redis.py)
on a free port, and fake servers that name themselves in X-Server.

Learned sessions and source pins made on A route the same on B; a
redispatch on A is followed by B; Redis killed, or paused (slow, not gone),
under load fails and delays no request and is caught up with when it
returns; a restarted gateway keeps its sessions (warm-up); a Sentinel
failover is followed.

Issue 16: Redis holds keyed hashes of learned ids and client addresses,
never the values (keys computed independently by redis.affinity_key); a
FLUSHALL under a live connection is refilled within 3 s; a Redis never
reached is counted in gateway_affinity_store_errors_total.
"""

import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from harness import (GatewayTestCase, LOCAL, Http11Client, basic_config, get_from, main,  # noqa: E402
                     run_gateway, wait_until)
from admin import Admin, series  # noqa: E402
from redis import RedisServer, Sentinel, affinity_key  # noqa: E402

NAMES = ("s1", "s2", "s3")
LEARN = {"learn": {"cookie": "JSESSIONID", "ttl": "30m"}}
SOURCE = {"source": {"ipv4_mask": 32, "ttl": "30m"}}


def source_key(ip, **kw):
    """The Redis key of a source pin for an IPv4 address (mask 32)."""
    return affinity_key(b"4" + bytes(int(x) for x in ip.split(".")), kind="S", **kw)


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

    def learn_from(self, gw, ip, session):
        """learn() from client address ip (which gets a source pin too, with
        source persistence on)."""
        r = get_from(ip, gw.port("http"), learn_path(session))
        self.assertEqual(r.status, 200)
        return r.getheader("x-server")

    def assertPinsHold(self, gw, owners, pins, path):
        """Through gw, each session of `owners` (from an address without a
        pin) and each address of `pins` (without a session cookie) reaches
        its server 3 times, and the access log says each was a learn-hit or
        a source-hit: the gateway followed the entries, never chose."""
        check_ip = "127.0.0.200"
        for session, owner in owners.items():
            seen = [get_from(check_ip, gw.port("http"), path, {"Cookie": "JSESSIONID=" + session})
                    .getheader("x-server") for _ in range(3)]
            self.assertEqual(seen, [owner] * 3, "session %s through %s" % (session, gw.ports))
        for ip, owner in pins.items():
            seen = [get_from(ip, gw.port("http"), path).getheader("x-server") for _ in range(3)]
            self.assertEqual(seen, [owner] * 3, "source %s through %s" % (ip, gw.ports))
        n = 3 * (len(owners) + len(pins))
        lines = wait_until(lambda: (lambda ls: ls if len(ls) >= n else None)(
            [l for l in gw.log_lines() if " %s " % path in l]), 5.0) or []
        self.assertEqual(len(lines), n, gw.log_lines())
        learn_hits = [l for l in lines if l.startswith(check_ip + ":")]
        self.assertEqual(len(learn_hits), 3 * len(owners), lines)
        self.assertEqual([l for l in learn_hits if " learn-hit " not in l], [], "not followed")
        self.assertEqual([l for l in lines if l not in learn_hits and " source-hit " not in l], [],
                         "not followed")

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
        self.assertEqual(keys, sorted(affinity_key(k) for k in owners))
        self.assertEqual(redis.command("GET", affinity_key("sess-0")), owners["sess-0"])
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
        self.assertTrue(wait_until(lambda: len(redis.keys("gw:a:app:s:*")) == len(owners), 2.0),
                        "want %d source keys in Redis: %r" % (len(owners), redis.keys()))
        self.assertEqual(redis.keys("gw:a:app:s:*"), sorted(source_key(ip) for ip in owners))
        for ip, owner in owners.items():
            self.assertEqual(redis.command("GET", source_key(ip)), owner)
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
        self.assertEqual(redis.command("GET", affinity_key("moving")), new_owner)
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
        self.assertEqual(redis.command("GET", affinity_key("paused")), paused_owner)

    def test_gateway_starts_without_redis_and_catches_up(self):
        redis = RedisServer()   # not started: nothing listens on its port
        self.addCleanup(redis.close)
        s = self.servers(*NAMES)
        a = self.gateway(self.config(s, LEARN, {"address": redis.address}))
        self.assertIn("not reachable at start-up", a.stderr())
        owner = self.learn(a, "early")
        self.assertRoutes(a, "early", owner)
        redis.start()
        self.assertTrue(wait_until(lambda: redis.command("GET", affinity_key("early")) == owner, 5.0))

    def test_errors_are_counted_while_redis_was_never_reachable(self):
        """No request, no change to write: the unreachable Redis itself is
        counted (about once a second: each backed-off attempt)."""
        redis = RedisServer()   # never started
        self.addCleanup(redis.close)
        s = self.servers(*NAMES)
        a = self.gateway(self.config(s, LEARN, {"address": redis.address},
                                     admin={"bind": "127.0.0.1:0"}))
        admin = Admin(a)
        self.addCleanup(admin.close)

        def errors():
            return sum(series(admin.metrics(), "gateway_affinity_store_errors_total").values())
        first = wait_until(lambda: errors() or None, 5.0)
        self.assertTrue(first, "gateway_affinity_store_errors_total stays 0 with Redis never reachable")
        self.assertTrue(wait_until(lambda: errors() >= first + 2, 4.0),
                        "the count does not go on while Redis stays unreachable")
        self.assertIn("not reachable at start-up", a.stderr())


class FlushTest(RedisStoreTestCase):
    def test_flushall_is_refilled_within_3s(self):
        """FLUSHALL under live connections (nothing reconnects): every
        entry is back in Redis within 3 s, and a replica started after the
        flush routes the old sessions and pins by what it loads."""
        redis = self.redis()
        s = self.servers(*NAMES)
        cfg = self.config(s, dict(LEARN, **SOURCE), {"address": redis.address})
        a, b = self.gateway(cfg), self.gateway(cfg)
        owners = {"fl-%d" % i: self.learn_from(a, "127.0.1.%d" % i, "fl-%d" % i) for i in range(1, 9)}
        self.assertEqual(len(set(owners.values())), 3, owners)
        pins = {}
        for i in range(2, 6):
            ip = "127.0.0.%d" % i
            pins[ip] = get_from(ip, b.port("http")).getheader("x-server")
        want = sorted([affinity_key(k) for k in owners] +
                      [source_key("127.0.1.%d" % i) for i in range(1, 9)] +
                      [source_key(ip) for ip in pins])
        self.assertTrue(wait_until(lambda: redis.keys("gw:a:*") == want, 3.0),
                        "%r\n%r" % (redis.keys("gw:a:*"), want))
        values = {k: redis.command("GET", k) for k in want}
        time.sleep(1.2)   # every replica's marker was checked since

        out = subprocess.run(["redis-cli", "-p", str(redis.port), "FLUSHALL"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
        flushed = time.monotonic()
        self.assertEqual(out.stdout.strip(), b"OK", out.stdout)
        self.assertEqual(redis.keys("gw:a:*"), [])
        back = wait_until(lambda: redis.keys("gw:a:*") == want, 3.0, interval=0.02)
        took = time.monotonic() - flushed
        self.assertTrue(back, "not refilled within 3 s of the FLUSHALL: %r" % redis.keys("*"))
        self.assertLess(took, 3.0)
        self.assertEqual({k: redis.command("GET", k) for k in want}, values)
        for gw in (a, b):
            self.assertTrue(wait_until(lambda: "gone from Redis" in gw.stderr(), 2.0), gw.stderr())

        c = self.gateway(cfg)   # a fresh replica: only Redis can tell it
        self.assertPinsHold(c, owners, pins, "/after-flush")


class KeysAtRestTest(RedisStoreTestCase):
    SESSION = "JSID-7c1e44b0d2"

    def secret_file(self, text):
        fd, path = tempfile.mkstemp(prefix="sag-secret-")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        self.addCleanup(os.unlink, path)
        return path

    def test_no_session_id_or_client_address_readable_in_redis(self):
        """Learn and source entries on a real Redis: its keys (KEYS and
        redis-cli --scan), values, dump file and announcements show no
        learned id and no client address; they are keyed hashes under
        key_secret_file, and a second gateway with the same config routes
        the same sessions by them."""
        redis = self.redis(extra=["--rdbcompression", "no"])   # raw strings stay greppable in the dump
        secret = "replica-shared-key-secret"
        section = {"address": redis.address, "key_secret_file": self.secret_file(secret + "\nignored\n")}
        s = self.servers(*NAMES)
        a, b = self.pair(s, dict(LEARN, **SOURCE), section)
        with redis.subscribe("gw:affinity") as sub:
            owners = {"%s-%d" % (self.SESSION, i): self.learn_from(a, "127.0.1.%d" % i, "%s-%d" % (self.SESSION, i))
                      for i in range(1, 7)}
            pins = {}
            for i in range(2, 8):
                ip = "127.0.0.%d" % i
                pins[ip] = get_from(ip, a.port("http")).getheader("x-server")
            want = sorted([affinity_key(k, secret=secret) for k in owners] +
                          [source_key("127.0.1.%d" % i, secret=secret) for i in range(1, 7)] +
                          [source_key(ip, secret=secret) for ip in pins])
            self.assertTrue(wait_until(lambda: redis.keys("gw:a:*") == want, 3.0),
                            "%r\n%r" % (redis.keys("gw:a:*"), want))
            self.assertTrue(wait_until(lambda: len(sub.messages()) >= len(want), 2.0), sub.messages())
            messages = sub.messages()
        scan = subprocess.run(["redis-cli", "-p", str(redis.port), "--scan"], stdout=subprocess.PIPE,
                              timeout=10).stdout
        keys = subprocess.run(["redis-cli", "-p", str(redis.port), "KEYS", "*"], stdout=subprocess.PIPE,
                              timeout=10).stdout
        self.assertEqual(sorted(scan.split()), sorted(keys.split()))
        self.assertTrue(set(want) <= set(k.decode() for k in keys.split()), keys)
        values = [redis.command("GET", k) for k in redis.keys("gw:a:*")]
        self.assertEqual(sorted(set(values)), sorted(NAMES))
        self.assertEqual(redis.command("SAVE"), "OK")
        with open(os.path.join(redis.dir, "dump.rdb"), "rb") as f:
            dump = f.read()
        self.assertIn(want[0].encode(), dump, "the dump does not hold keys verbatim: a vacuous check")

        texts = {"redis-cli --scan": scan, "KEYS *": keys, "dump.rdb": dump,
                 "announcements": "\n".join(messages).encode("utf-8", "surrogateescape")}
        forbidden = [self.SESSION.encode(), b"7c1e44b0d2", b"127.0.", b"%7F%00", b"\x7f\x00",
                     b":L:", b":S:"]
        for where, text in texts.items():
            for raw in forbidden:
                self.assertNotIn(raw, text, "%r readable in %s" % (raw, where))

        # B, same config: the same sessions and pins, by the hashed keys.
        self.assertPinsHold(b, owners, pins, "/on-b")
        self.assertNotIn("without a secret", a.stderr())

    def test_key_secret_falls_back_to_the_cookie_secret_then_to_none(self):
        redis = self.redis()
        s = self.servers(*NAMES)
        cookie = {"name": "SRV", "mode": "insert", "secret_file": self.secret_file("\nfirst-cookie\nsecond\n")}
        a = self.gateway(self.config(s, dict(LEARN, cookie=cookie), {"address": redis.address}))
        owner = self.learn(a, "with-cookie-secret")
        self.assertTrue(wait_until(lambda: redis.command(
            "GET", affinity_key("with-cookie-secret", secret="first-cookie")) == owner, 2.0), redis.keys())
        self.assertNotIn("without a secret", a.stderr())
        b = self.gateway(self.config(s, LEARN, {"address": redis.address, "key_prefix": "nosecret:"}))
        owner = self.learn(b, "without-secret")
        self.assertTrue(wait_until(lambda: redis.command(
            "GET", affinity_key("without-secret", prefix="nosecret:")) == owner, 2.0), redis.keys())
        self.assertIn("without a secret", b.stderr())

    def test_a_missing_or_empty_key_secret_file_is_a_config_error(self):
        d = self.temp_dir("sag-keysecret-")
        empty = os.path.join(d, "empty")
        open(empty, "w").close()
        for path, why in ((os.path.join(d, "missing"), "cannot read"), (empty, "is empty")):
            cfg = os.path.join(d, "gw.yaml")
            with open(cfg, "w") as f:
                f.write("listeners:\n  - {name: http, bind: \"127.0.0.1:1\", backend: app}\n"
                        "backends:\n  - name: app\n    servers: [{name: s1, address: \"127.0.0.1:9\"}]\n"
                        "affinity_store:\n  type: redis\n  redis:\n"
                        "    key_secret_file: %s\n" % path)
            p = run_gateway(["--check", "--config", cfg])
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertRegex(p.stderr, r"(?m)^%s:9:22: 'key_secret_file': " % cfg)
            self.assertIn(why, p.stderr)


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
        self.assertTrue(wait_until(lambda: replica.command("GET", affinity_key("after-failover")) == after,
                                   10.0))
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
