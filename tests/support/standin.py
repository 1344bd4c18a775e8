"""A stand-in for the gateway, to check tests against a known-good proxy.

With SAG_TEST_STANDIN=haproxy in the environment, ContractTestCase.gateway()
starts /usr/sbin/haproxy with a config equivalent to the gateway config dict
(basic_config's shape: listeners with or without tls, one backend, cookie
insert persistence, X-Forwarded-*, timeouts, h2 stream limit) instead of the
gateway. Without it, ContractTestCase is GatewayTestCase: the gateway runs.

The stand-in exists to show that a test is right (it passes against a proxy
that has the feature) before the gateway can pass it. It is never what the
project's test run uses; a test that a stand-in cannot model calls
self.skip_on_standin(reason).

    class T(ContractTestCase):
        def test_x(self):
            gw = self.gateway(h2_config([s1, s2]))   # Gateway or HaproxyStandin

HaproxyStandin answers what the tests use of Gateway: port(), url(), pid,
alive(), send_signal() (SIGTERM becomes haproxy's graceful SIGUSR1), stop(),
wait(), rss_kib(), describe(), log_lines() (always empty).
"""

import os
import signal
import subprocess
import tempfile
import time

from gateway import (ChildProcess, GatewayError, _run_tmpdir, _wait_port, basic_config,
                     free_port, make_cert, spawn)
from harness import GatewayTestCase

__all__ = ["STANDIN", "HaproxyStandin", "ContractTestCase", "h2_config"]

STANDIN = os.environ.get("SAG_TEST_STANDIN", "").strip().lower()
HAPROXY = os.environ.get("SAG_HAPROXY_BIN", "/usr/sbin/haproxy")


def h2_config(servers, **kw):
    """basic_config with the TLS listener offering h2 and http/1.1 (docs/configuration.md tls.alpn)."""
    cfg = basic_config(servers, **kw)
    for l in cfg["listeners"]:
        if "tls" in l:
            l["tls"] = dict(l["tls"], alpn=["h2", "http/1.1"])
    return cfg


def _haproxy_duration(v, default):
    """SPEC durations ("250ms", "5s", "30m", "8h") are haproxy's syntax too."""
    return str(v) if v else default


class HaproxyStandin(ChildProcess):
    def __init__(self, config, startup_timeout=10.0):
        if not isinstance(config, dict):
            raise GatewayError("the haproxy stand-in takes a config dict only")
        self.config = config
        self.dir = tempfile.mkdtemp(prefix="haproxy-", dir=_run_tmpdir())
        self.config_path = os.path.join(self.dir, "haproxy.cfg")
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self.ports = {}
        self.proc = None
        self.returncode = None
        self.startup_timeout = startup_timeout
        self._stopping = False
        self.start()

    def _render(self):
        cfg = self.config
        limits = cfg.get("limits", {})
        to = cfg.get("timeouts", {})
        client = _haproxy_duration(to.get("client"), "30s")
        lines = ["global",
                 "    nbthread %d" % int(cfg.get("workers", 2) if cfg.get("workers") != "auto" else 2),
                 "    tune.h2.max-concurrent-streams %d" % int(limits.get("h2_max_concurrent_streams", 100)),
                 # past it haproxy closes what is left (a bounded test cleanup)
                 "    hard-stop-after %s" % _haproxy_duration(to.get("shutdown"), "5s"),
                 "defaults",
                 "    mode http",
                 "    timeout connect 2s",
                 "    timeout client %s" % client,
                 "    timeout tunnel %s" % client,
                 "    timeout server 30s",
                 "    timeout http-request %s" % _haproxy_duration(to.get("http_request"), "10s"),
                 "    timeout http-keep-alive %s" % _haproxy_duration(to.get("keepalive"), "60s"),
                 "    option http-keep-alive"]
        for l in cfg["listeners"]:
            b = l.get("bind")
            port = free_port() if b is None or b.endswith(":0") else int(b.rsplit(":", 1)[1])
            self.ports[l["name"]] = port
            lines.append("frontend %s" % l["name"])
            if "tls" in l:
                t = l["tls"]
                alpn = ",".join(t.get("alpn", ["h2", "http/1.1"]))
                lines.append("    bind 127.0.0.1:%d ssl crt %s alpn %s"
                             % (port, t.get("certificates") or make_cert(), alpn))
                proto = "https"
            else:
                lines.append("    bind 127.0.0.1:%d" % port)
                proto = "http"
            lines += ["    http-request del-header x-forwarded-for",
                      "    http-request set-header X-Forwarded-Proto %s" % proto,
                      "    http-request set-header X-Forwarded-Host %[req.hdr(host)]",
                      "    http-request set-header X-Forwarded-Port %[dst_port]",
                      "    option forwardfor",
                      "    default_backend %s" % l["backend"]]
        for be in cfg["backends"]:
            ck = (be.get("persistence") or {}).get("cookie", {"name": "SRV"})
            lines += ["backend %s" % be["name"],
                      "    balance roundrobin",
                      "    http-reuse always",
                      "    cookie %s insert indirect nocache httponly" % ck.get("name", "SRV")]
            for s in be["servers"]:
                lines.append("    server %s %s cookie %s" % (s["name"], s["address"], s["name"]))
        text = "\n".join(lines) + "\n"
        with open(self.config_path, "w") as f:
            f.write(text)
        return text

    def start(self):
        self._render()
        self._err = open(self.stderr_path, "wb")
        self.proc = spawn([HAPROXY, "-db", "-f", self.config_path],
                          stdin=subprocess.DEVNULL, stdout=self._err, stderr=self._err,
                          cwd=self.dir)
        deadline = time.monotonic() + self.startup_timeout
        if not all(_wait_port(p, self.proc, deadline) for p in self.ports.values()):
            self.stop(signal.SIGKILL)
            raise GatewayError("haproxy did not start\n" + self.describe())
        return self

    # ------------------------------------------------- what tests use of Gateway
    # (pid, alive(), wait(), stop(), kill(), rss_kib() come from ChildProcess)
    def port(self, name):
        return self.ports[name]

    def _listener_tls(self, name):
        return any(l["name"] == name and "tls" in l for l in self.config["listeners"])

    def url(self, listener, path="/"):
        scheme = "https" if self._listener_tls(listener) else "http"
        return "%s://127.0.0.1:%d%s" % (scheme, self.ports[listener], path)

    def send_signal(self, sig):
        # haproxy's graceful stop (finish in-flight work, GOAWAY) is SIGUSR1;
        # once stopping, a second one would kill it.
        if sig in (signal.SIGTERM, signal.SIGINT):
            if self._stopping:
                return
            self._stopping = True
            sig = signal.SIGUSR1
        self.proc.send_signal(sig)

    def _stopped(self):
        if not self._err.closed:
            self._err.close()

    def stderr(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_lines(self):
        return []

    def describe(self):
        with open(self.config_path) as f:
            cfg = f.read()
        return "haproxy stand-in config:\n%s\nstderr (tail):\n%s" % (cfg, self.stderr()[-3000:])


class ContractTestCase(GatewayTestCase):
    """GatewayTestCase whose gateway() is the stand-in when SAG_TEST_STANDIN says so."""

    standin = STANDIN

    def gateway(self, config, expect_clean_exit=True, **kw):
        if self.standin == "haproxy":
            gw = HaproxyStandin(config)

            def cleanup():
                rc = gw.stop(signal.SIGTERM, timeout=15)
                if expect_clean_exit and rc != 0:
                    raise AssertionError("haproxy stand-in exited with %s\n%s" % (rc, gw.describe()))
            self.addCleanup(cleanup)
            return gw
        if self.standin:
            raise GatewayError("unknown SAG_TEST_STANDIN %r (known: haproxy)" % self.standin)
        return super().gateway(config, expect_clean_exit=expect_clean_exit, **kw)

    def skip_on_standin(self, reason):
        if self.standin:
            self.skipTest("not modelled by the %s stand-in: %s" % (self.standin, reason))
