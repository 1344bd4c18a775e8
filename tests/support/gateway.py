"""Starts and stops the gateway for the integration tests (standard library only).

    certs = make_cert()                      # a directory holding dev.pem
    cfg = basic_config([s1, s2], certs)      # a dict following docs/configuration.md
    with Gateway(cfg) as gw:
        gw.port("https"), gw.url("https", "/"), gw.log_lines(), gw.stop()

The binary is $SAG_BIN_DIR/gateway. A missing SAG_BIN_DIR or binary is an
error (the tests fail; they never skip for it).

Config as a dict: every listener (and `admin`) whose `bind` is absent or ends
in ":0" gets a free port on 127.0.0.1. Config as text: `{{port:NAME}}` becomes
a free port (the same one for the same NAME; `gw.port(NAME)`), `{{certs}}`
the make_cert() directory.
"""

import atexit
import collections
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

__all__ = ["Gateway", "GatewayError", "ChildProcess", "gateway_bin", "bin_dir", "free_port",
           "make_cert", "to_yaml", "basic_config", "run_gateway", "rss_kib", "spawn"]


class GatewayError(Exception):
    pass


def bin_dir():
    d = os.environ.get("SAG_BIN_DIR")
    if not d:
        raise GatewayError("SAG_BIN_DIR is not set (it names the directory holding `gateway`)")
    return d


def gateway_bin():
    p = os.path.join(bin_dir(), "gateway")
    if not (os.path.isfile(p) and os.access(p, os.X_OK)):
        raise GatewayError("gateway binary not found or not executable: %s" % p)
    return p


_recent_ports = collections.deque(maxlen=256)


def free_port():
    """A port that was free on 127.0.0.1 a moment ago (bind 0, close), and
    not one this process handed out recently: the kernel may offer a port
    again as soon as it is closed, and two listeners of one config given
    the same port fail the gateway's start."""
    for _ in range(100):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        finally:
            s.close()
        if port not in _recent_ports:
            break
    _recent_ports.append(port)
    return port


# ----------------------------------------------------------------------- certs
_cert_lock = threading.Lock()
_cert_dir = None
_run_tmp = None


def _run_tmpdir():
    global _run_tmp
    if _run_tmp is None:
        _run_tmp = tempfile.mkdtemp(prefix="sag-it-")
        atexit.register(shutil.rmtree, _run_tmp, True)
    return _run_tmp


def make_cert(dir=None):
    """A self-signed P-256 certificate for localhost / 127.0.0.1 (cert + key
    concatenated in DIR/dev.pem). Generated once per test run; with `dir` the
    cached file is copied there. Returns the directory."""
    global _cert_dir
    with _cert_lock:
        if _cert_dir is None:
            d = os.path.join(_run_tmpdir(), "certs")
            os.makedirs(d, exist_ok=True)
            crt, key = os.path.join(d, "cert.tmp"), os.path.join(d, "key.tmp")
            p = subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-nodes", "-subj", "/CN=localhost",
                 "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-days", "30",
                 "-keyout", key, "-out", crt],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
            if p.returncode != 0:
                raise GatewayError("openssl failed: %s" % p.stderr.decode(errors="replace"))
            with open(os.path.join(d, "dev.pem"), "wb") as out:
                for f in (crt, key):
                    with open(f, "rb") as src:
                        out.write(src.read())
                    os.unlink(f)
            _cert_dir = d
        if dir is None:
            return _cert_dir
        os.makedirs(dir, exist_ok=True)
        shutil.copyfile(os.path.join(_cert_dir, "dev.pem"), os.path.join(dir, "dev.pem"))
        return dir


# ------------------------------------------------------------------------ YAML
def _scalar(v):
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if isinstance(v, (int, float)):
        return str(v)
    return json.dumps(str(v))   # a JSON string is a valid YAML double-quoted scalar


def to_yaml(obj, indent=0):
    """Block-style YAML for dicts/lists/scalars (keys keep their order)."""
    pad = " " * indent
    lines = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, dict) and v:
                lines.append("%s%s:" % (pad, k))
                lines.append(to_yaml(v, indent + 2))
            elif isinstance(v, list) and v:
                lines.append("%s%s:" % (pad, k))
                lines.append(to_yaml(v, indent + 2))
            elif isinstance(v, dict):
                lines.append("%s%s: {}" % (pad, k))
            elif isinstance(v, list):
                lines.append("%s%s: []" % (pad, k))
            else:
                lines.append("%s%s: %s" % (pad, k, _scalar(v)))
    elif isinstance(obj, list):
        for item in obj:
            if isinstance(item, (dict, list)) and item:
                sub = to_yaml(item, indent + 2).split("\n")
                sub[0] = pad + "- " + sub[0][indent + 2:]
                lines.extend(sub)
            elif isinstance(item, dict):
                lines.append(pad + "- {}")
            elif isinstance(item, list):
                lines.append(pad + "- []")
            else:
                lines.append(pad + "- " + _scalar(item))
    else:
        lines.append(pad + _scalar(obj))
    return "\n".join(lines)


def basic_config(servers, certs_dir=None, tls=True, plain=True, backend_name="app",
                 persistence=None, health_check=None, workers=2, **sections):
    """A config dict: listener `https` (when tls) and `http` (when plain) on
    free ports, both to backend `app` holding `servers` (FakeServer objects,
    or dicts like {"name":..., "address":..., "weight":...}), health checks
    off, insert cookie SRV, trust no proxy. Extra keyword arguments become
    top-level sections (limits=..., timeouts=..., forwarded=..., ...)."""
    listeners = []
    if tls:
        listeners.append({"name": "https", "bind": "127.0.0.1:0",
                          "tls": {"certificates": certs_dir or make_cert()},
                          "backend": backend_name})
    if plain:
        listeners.append({"name": "http", "bind": "127.0.0.1:0", "backend": backend_name})
    srv = []
    for s in servers:
        if isinstance(s, dict):
            srv.append(s)
        else:
            srv.append({"name": s.name, "address": "127.0.0.1:%d" % s.port})
    backend = {"name": backend_name, "servers": srv,
               "health_check": health_check or {"type": "none"},
               "persistence": persistence or {"cookie": {"name": "SRV", "mode": "insert"}}}
    cfg = {"workers": workers, "listeners": listeners, "backends": [backend],
           "forwarded": {"trusted_proxies": []}}
    for k, v in sections.items():
        if k in cfg and isinstance(cfg[k], dict) and isinstance(v, dict):
            cfg[k] = dict(cfg[k], **v)
        else:
            cfg[k] = v
    return cfg


# -------------------------------------------------------------------- process
# Every child a test starts (gateways, stand-ins, redis-server) is in _live
# until it is reaped, so that _kill_leftovers can end what a failed test left.
_live = set()
_live_lock = threading.Lock()


def _kill_leftovers():
    with _live_lock:
        procs = list(_live)
    for p in procs:
        if p.poll() is None:
            try:
                p.kill()    # SIGKILL ends a SIGSTOPped process too
                p.wait(timeout=5)
            except Exception:
                pass


atexit.register(_kill_leftovers)

_PR_SET_PDEATHSIG = 1


def _child_setup():
    # The child dies with the test process even when atexit does not run
    # (ctest timeout, SIGKILL).
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except Exception:
        pass


def spawn(args, **popen_kw):
    """subprocess.Popen(args) for a child that dies with the test process
    (PR_SET_PDEATHSIG, and an atexit kill until forget(proc))."""
    proc = subprocess.Popen(args, preexec_fn=_child_setup, **popen_kw)
    with _live_lock:
        _live.add(proc)
    return proc


def forget(proc):
    """proc was reaped: the atexit kill no longer needs to look at it."""
    with _live_lock:
        _live.discard(proc)


def rss_kib(pid):
    """VmRSS of process pid in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise GatewayError("no VmRSS for pid %d" % pid)


class ChildProcess:
    """What a gateway and its stand-ins share: one child process in `proc`.

    Subclasses start it (with spawn()) and may override send_signal() (how a
    stop signal is delivered) and _stopped() (what to release once it has
    exited)."""

    proc = None
    returncode = None

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout):
        """Waits for exit; returns the exit code, or None if still running."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig=signal.SIGTERM, timeout=15.0):
        """Sends sig, waits up to timeout, then SIGKILLs. Returns the exit code
        (negative for a signal, as subprocess reports it)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.send_signal(sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._stopped()
        forget(self.proc)
        self.returncode = self.proc.returncode
        return self.returncode

    def kill(self):
        return self.stop(signal.SIGKILL, 5)

    def _stopped(self):
        pass

    def rss_kib(self):
        """VmRSS of the process in KiB."""
        return rss_kib(self.proc.pid)


def run_gateway(args, timeout=20, cwd=None):
    """Runs `gateway ARGS` to completion (for --check, --version): CompletedProcess
    with text stdout/stderr."""
    p = subprocess.run([gateway_bin()] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout, cwd=cwd,
                       preexec_fn=_child_setup)
    p.stdout = p.stdout.decode("utf-8", "replace")
    p.stderr = p.stderr.decode("utf-8", "replace")
    return p


def _wait_port(port, proc, deadline):
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(0.5)
        try:
            s.connect(("127.0.0.1", port))
            return True
        except OSError:
            time.sleep(0.05)
        finally:
            s.close()
    return False


class Gateway(ChildProcess):
    def __init__(self, config, start=True, startup_timeout=10.0, args=(), env=None,
                 wait_ports=None):
        """config: a dict (see basic_config) or YAML text with {{port:NAME}} / {{certs}}.
        wait_ports: names of the ports to wait for (default: every allocated one)."""
        self.config = config
        self.dir = tempfile.mkdtemp(prefix="gw-", dir=_run_tmpdir())
        self.config_path = os.path.join(self.dir, "gateway.yaml")
        self.stdout_path = os.path.join(self.dir, "stdout.log")
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self.startup_timeout = startup_timeout
        self.args = list(args)
        self.env = env
        self.wait_ports = wait_ports
        self.ports = {}
        self.proc = None
        self.returncode = None
        if start:
            self.start()

    # ------------------------------------------------------------ config file
    def _render(self, keep_ports=None):
        """keep_ports: {name: port} that listeners (and admin) of the same
        name keep (a reload's new file); others get free ports."""
        keep_ports = keep_ports or {}
        self.ports = {}
        if isinstance(self.config, dict):
            cfg = json.loads(json.dumps(self.config))   # deep copy
            for l in cfg.get("listeners", []):
                b = l.get("bind")
                if (b is None or b.endswith(":0")) and l["name"] in keep_ports:
                    l["bind"] = "127.0.0.1:%d" % keep_ports[l["name"]]
                    self.ports[l["name"]] = keep_ports[l["name"]]
                elif b is None or b.endswith(":0"):
                    port = free_port()
                    l["bind"] = "127.0.0.1:%d" % port
                    self.ports[l["name"]] = port
                else:
                    self.ports[l["name"]] = int(b.rsplit(":", 1)[1])
            adm = cfg.get("admin")
            if isinstance(adm, dict):
                b = adm.get("bind")
                if (b is None or b.endswith(":0")) and "admin" in keep_ports:
                    adm["bind"] = "127.0.0.1:%d" % keep_ports["admin"]
                    self.ports["admin"] = keep_ports["admin"]
                elif b is None or b.endswith(":0"):
                    port = free_port()
                    adm["bind"] = "127.0.0.1:%d" % port
                    self.ports["admin"] = port
                else:
                    self.ports["admin"] = int(b.rsplit(":", 1)[1])
            self.rendered = cfg
            text = to_yaml(cfg) + "\n"
        else:
            def port_for(m):
                name = m.group(1)
                if name not in self.ports:
                    self.ports[name] = free_port()
                return str(self.ports[name])

            text = re.sub(r"\{\{port:([A-Za-z0-9_.-]+)\}\}", port_for, self.config)
            if "{{certs}}" in text:
                text = text.replace("{{certs}}", make_cert())
            self.rendered = text
        with open(self.config_path, "w") as f:
            f.write(text)
        return text

    @property
    def config_text(self):
        with open(self.config_path) as f:
            return f.read()

    # ---------------------------------------------------------------- control
    def start(self):
        binary = gateway_bin()
        last_err = None
        for attempt in range(3):
            self._render()
            self._out = open(self.stdout_path, "wb")
            self._err = open(self.stderr_path, "wb")
            env = dict(os.environ)
            if self.env:
                env.update(self.env)
            self.proc = spawn([binary, "--config", self.config_path] + self.args,
                              stdin=subprocess.DEVNULL, stdout=self._out,
                              stderr=self._err, cwd=self.dir, env=env)
            deadline = time.monotonic() + self.startup_timeout
            names = self.wait_ports if self.wait_ports is not None else list(self.ports)
            ok = all(_wait_port(self.ports[n], self.proc, deadline) for n in names)
            if ok and self.proc.poll() is None:
                return self
            rc = self.proc.poll()
            if rc is None:
                self._hard_kill()
                last_err = GatewayError(
                    "gateway did not listen on %s within %.0fs\nconfig:\n%s\nstderr:\n%s"
                    % (self.ports, self.startup_timeout, self.config_text, self.stderr()))
                break
            err = self.stderr()
            last_err = GatewayError("gateway exited with %s during startup\nconfig:\n%s\nstderr:\n%s"
                                    % (rc, self.config_text, err))
            self._close_files()
            if "in use" not in err.lower():   # only a lost port race is worth a retry
                break
        raise last_err

    def _hard_kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self._close_files()

    def _close_files(self):
        for f in (getattr(self, "_out", None), getattr(self, "_err", None)):
            if f is not None and not f.closed:
                f.close()

    def reload(self):
        self.proc.send_signal(signal.SIGHUP)

    def write_config(self, config):
        """Replaces the config file for the next SIGHUP: listeners (and the
        admin listener) keep their ports by name; new ones get free ports."""
        self.config = config
        self._render(keep_ports=dict(self.ports))

    RELOAD_DONE = ("SIGHUP: configuration reloaded", "SIGHUP: reload refused")

    def reload_and_wait(self, timeout=10.0):
        """SIGHUP, then waits for the reload's outcome line; returns it."""
        def outcomes():
            return [l for l in self.stderr().splitlines() if any(m in l for m in self.RELOAD_DONE)]
        before = len(outcomes())
        self.reload()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = outcomes()
            if len(got) > before:
                return got[before]
            time.sleep(0.02)
        raise GatewayError("no reload outcome within %.0fs\nstderr:\n%s" % (timeout, self.stderr()))

    def _stopped(self):
        self._close_files()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # --------------------------------------------------------------- helpers
    def port(self, name):
        return self.ports[name]

    def url(self, listener, path="/"):
        scheme = "https" if self._listener_tls(listener) else "http"
        return "%s://127.0.0.1:%d%s" % (scheme, self.ports[listener], path)

    def _listener_tls(self, name):
        if isinstance(self.config, dict):
            for l in self.config.get("listeners", []):
                if l.get("name") == name:
                    return "tls" in l
        return name.startswith("https")

    def stdout(self):
        try:
            with open(self.stdout_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def stderr(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_lines(self):
        """Access-log lines written so far (stdout, complete lines only)."""
        text = self.stdout()
        lines = text.split("\n")
        return [l for l in lines[:-1] if l.strip()]

    def wait_log_lines(self, n, timeout=5.0):
        """Waits until at least n access-log lines exist; returns the lines."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.log_lines()
            if len(lines) >= n or time.monotonic() >= deadline:
                return lines
            time.sleep(0.05)

    def describe(self):
        """Config and stderr tail, for assertion messages."""
        return "config:\n%s\nstderr (tail):\n%s" % (self.config_text, self.stderr()[-3000:])
