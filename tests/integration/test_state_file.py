"""affinity_store.state_file (docs/behaviour.md#state-file): the memory store's
learned sessions and source pins survive a restart, servers matched by name.

Fake servers name themselves in X-Server; each test restarts a real gateway
process (SIGTERM, then a new process on the same config file's directory).
"""

import os
import stat
import sys
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from admin import Admin  # noqa: E402
from gateway import Gateway, run_gateway  # noqa: E402
from harness import GatewayTestCase, basic_config, count_servers, get_from, main  # noqa: E402

NAMES = ("s1", "s2", "s3")
SESSIONS = ["sess-%02d" % i for i in range(24)]
CLIENTS = ["127.0.0.%d" % i for i in range(2, 10)]


def setcookie(value):
    return "/setcookie?" + urllib.parse.urlencode({"name": "JSESSIONID", "value": value})


class StateFileTest(GatewayTestCase):
    def config(self, servers, state_file, **persistence):
        cfg = basic_config(servers, tls=False, persistence=persistence or {
            "learn": {"cookie": "JSESSIONID", "ttl": "30m"}})
        cfg["affinity_store"] = {"type": "memory", "state_file": state_file}
        return cfg

    def state_path(self):
        return os.path.join(self.temp_dir("sag-state-"), "affinity.state")

    def learn_all(self, gw):
        owners = {}
        for v in SESSIONS:
            r = self.fresh_get(gw, "http", setcookie(v))
            self.assertStatus(r, 200, gw)
            owners[v] = r.header("x-server")
        self.assertEqual(len(set(owners.values())), 3, owners)
        return owners

    def assert_routed(self, gw, owners):
        for v, owner in owners.items():
            r = self.fresh_get(gw, "http", "/", headers=[("Cookie", "JSESSIONID=" + v)])
            self.assertEqual(r.header("x-server"), owner, "session %s" % v)

    def stop(self, gw):
        """SIGTERM; returns the stopped process's stderr (start() truncates it)."""
        rc = gw.stop()
        self.assertEqual(rc, 0, gw.stderr())
        return gw.stderr()

    def test_restart_keeps_every_learned_session(self):
        s = self.servers(*NAMES)
        path = self.state_path()
        gw = self.gateway(self.config(s, path))
        owners = self.learn_all(gw)
        saved_log = self.stop(gw)
        n = len(SESSIONS)
        self.assertIn("state file %s: %d affinity entries saved" % (path, n), saved_log)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600, "the file holds the store's key")
        self.assertFalse(os.path.exists(path + ".tmp"))
        gw.start()
        self.assertIn("state file %s: %d of %d affinity entries loaded" % (path, n, n), gw.stderr())
        self.assert_routed(gw, owners)

    def test_restart_keeps_every_source_pin(self):
        s = self.servers(*NAMES)
        path = self.state_path()
        gw = self.gateway(self.config(s, path, source={"ttl": "30m"}))
        pinned = {ip: get_from(ip, gw.port("http")).getheader("x-server") for ip in CLIENTS}
        self.assertGreater(len(set(pinned.values())), 1, pinned)
        self.assertIn("%d affinity entries saved" % len(CLIENTS), self.stop(gw))
        gw.start()
        for ip, owner in pinned.items():
            self.assertEqual(get_from(ip, gw.port("http")).getheader("x-server"), owner, ip)

    def test_servers_reordered_and_one_removed(self):
        s = self.servers(*NAMES)
        path = self.state_path()
        gw = self.gateway(self.config(s, path))
        owners = self.learn_all(gw)
        self.stop(gw)
        # s2 leaves the config; s3 and s1 swap places.
        by = {x.name: x for x in s}
        gw.config["backends"][0]["servers"] = [
            {"name": n, "address": "127.0.0.1:%d" % by[n].port} for n in ("s3", "s1")]
        gw.start()
        moved = [v for v, o in owners.items() if o == "s2"]
        self.assertIn("for servers no longer configured", gw.stderr())
        self.assertIn("%d for servers no longer configured" % len(moved), gw.stderr())
        self.assert_routed(gw, {v: o for v, o in owners.items() if o != "s2"})
        # s2's sessions are balanced anew (as unknown session ids: the server
        # they land on starts a new session, which is then learned).
        for v in moved:
            r = self.fresh_get(gw, "http", setcookie(v), headers=[("Cookie", "JSESSIONID=" + v)])
            landed = r.header("x-server")
            self.assertIn(landed, ("s1", "s3"))
            again = self.fresh_get(gw, "http", "/", headers=[("Cookie", "JSESSIONID=" + v)])
            self.assertEqual(again.header("x-server"), landed, "session %s" % v)

    def test_admin_state_survives_a_restart(self):
        s = self.servers(*NAMES)
        path = self.state_path()
        cfg = self.config(s, path)
        cfg["admin"] = {"bind": "127.0.0.1:0"}
        gw = self.gateway(cfg)
        admin = Admin(gw)
        r = admin.put("/api/backends/app/servers/s2", {"state": "drain"})
        self.assertEqual(r.status, 200, r.text)
        r = admin.put("/api/backends/app/servers/s3", {"weight": 5})
        self.assertEqual(r.status, 200, r.text)
        admin.conn.close()
        self.stop(gw)
        gw.start()
        self.assertIn("server app/s2 drain, weight 100 (as the admin API left it)", gw.stderr())
        admin = Admin(gw)
        self.addCleanup(admin.conn.close)
        self.assertEqual(admin.json("/api/backends/app/servers/s2")["state"], "drain")
        self.assertEqual(admin.json("/api/backends/app/servers/s3")["weight"], 5)
        self.assertEqual(admin.json("/api/backends/app/servers/s1")["state"], "ready")

    def test_corrupt_file_starts_empty_and_serves(self):
        s = self.servers(*NAMES)
        path = self.state_path()
        gw = self.gateway(self.config(s, path))
        self.learn_all(gw)
        self.stop(gw)
        with open(path, "r+b") as f:
            data = bytearray(f.read())
            data[len(data) // 2] ^= 0x40
            f.seek(0)
            f.write(data)
        gw.start()
        self.assertIn("state file %s: corrupt (checksum mismatch); starting with an empty affinity store"
                      % path, gw.stderr())
        # Serving, with sessions balanced anew.
        seen = count_servers(self.fresh_get(gw, "http", "/", headers=[("Cookie", "JSESSIONID=" + v)])
                             for v in SESSIONS[:9])
        self.assertEqual(len(seen), 3, seen)

    def test_missing_file_is_a_first_start(self):
        s = self.servers(*NAMES)
        path = self.state_path()
        gw = self.gateway(self.config(s, path))
        self.assertIn("state file %s: No such file or directory; starting with an empty affinity store"
                      % path, gw.stderr())
        self.assertStatus(self.fresh_get(gw, "http", "/"), 200, gw)

    def test_check_refuses_a_missing_directory_and_redis(self):
        s = self.servers(*NAMES)
        for store, message in (
                ({"type": "memory", "state_file": "/nonexistent-sag-dir/affinity.state"},
                 r"'state_file': no such directory: /nonexistent-sag-dir"),
                ({"type": "redis", "redis": {"address": "127.0.0.1:6379"}, "state_file": "x.state"},
                 r"'state_file': only for type: memory")):
            cfg = self.config(s, "")
            cfg["affinity_store"] = store
            gw = Gateway(cfg, start=False)
            gw._render()
            p = run_gateway(["--check", "--config", gw.config_path])
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertRegex(p.stderr, r"gateway\.yaml:\d+:\d+: " + message)


if __name__ == "__main__":
    main()
