"""Failover under load (ctest label "load", also part of the full suite;
bounded to ~12 s): clients keep their sessions while servers die and return.
"""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from harness import GatewayTestCase, LOCAL, Http11Client, basic_config, main  # noqa: E402

NAMES = ("s1", "s2", "s3")


class FailoverLoadTest(GatewayTestCase):
    """4 keep-alive clients with cookies for 10 s while one of three servers
    is killed and restarted every 2 s: zero non-2xx answers."""

    def test_kill_and_restart_under_load(self):
        s = self.servers(*NAMES)
        cfg = basic_config(s, tls=False)
        gw = self.gateway(cfg)
        stop = threading.Event()
        results = []
        lock = threading.Lock()

        def client():
            c = Http11Client(LOCAL, gw.port("http"), cookies=True, timeout=10)
            n_bad, n = [], 0
            try:
                while not stop.is_set():
                    try:
                        r = c.get("/")
                        n += 1
                        if not 200 <= r.status < 300:
                            n_bad.append(r.status)
                    except Exception as e:  # a connection error is an error too
                        n_bad.append(repr(e))
                        c.close()
                        c = Http11Client(LOCAL, gw.port("http"), cookies=False, timeout=10)
            finally:
                c.close()
            with lock:
                results.append((n, n_bad))

        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 10
        victim = 0
        while time.monotonic() < deadline:
            time.sleep(1.0)
            s[victim].stop()
            time.sleep(1.0)
            s[victim].start()
            victim = (victim + 1) % 3
        stop.set()
        for t in threads:
            t.join(15)
        total = sum(n for n, _ in results)
        bad = [b for _, bs in results for b in bs]
        self.assertGreater(total, 200, "too few requests to mean anything: %d" % total)
        self.assertEqual(bad, [], "non-2xx or errors during failover (of %d requests)" % total)


if __name__ == "__main__":
    main()
