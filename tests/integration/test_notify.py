"""systemd's notify protocol (docs/behaviour.md#signals): a fake NOTIFY_SOCKET
(a datagram socket of the test's own) sees READY=1 once the gateway serves,
MAINPID= and READY=1 from the process that took over by SIGUSR2 (and no
STOPPING=1 from the old one), RELOADING=1 then READY=1 around a SIGHUP
reload, and STOPPING=1 on SIGTERM."""

import os
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from harness import GatewayTestCase, basic_config, main  # noqa: E402


def stop_pid(pid, timeout=15):
    """SIGTERM to a process that is not the test's child; waits until it is
    gone (a zombie counts as gone)."""
    def alive():
        try:
            with open("/proc/%d/stat" % pid) as f:
                return f.read().split(")")[-1].split()[0] != "Z"
        except OSError:
            return False
    if alive():
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive():
        os.kill(pid, signal.SIGKILL)


class NotifyTest(GatewayTestCase):
    def setUp(self):
        self.s1 = self.servers("s1")
        d = self.temp_dir("sag-notify-")
        self.path = os.path.join(d, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.addCleanup(self.sock.close)
        self.pid_path = os.path.join(d, "sag.pid")

    def messages(self, until, timeout=15):
        """Datagrams received until one contains `until` (each as a dict)."""
        got = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(4096).decode()
            except socket.timeout:
                break
            fields = dict(line.split("=", 1) for line in data.split("\n") if "=" in line)
            got.append(fields)
            if until in data:
                return got
        self.fail("no %r in %r" % (until, got))

    def test_ready_then_stopping(self):
        gw = self.gateway(basic_config([self.s1], tls=False), env={"NOTIFY_SOCKET": self.path})
        ready = self.messages("READY=1")[-1]
        self.assertEqual(ready["READY"], "1")
        self.assertIn("serving 1 listeners", ready["STATUS"])
        self.assertNotIn("MAINPID", ready, "not an upgrade")
        gw.send_signal(signal.SIGTERM)
        stopping = self.messages("STOPPING=1")[-1]
        self.assertIn("SIGTERM", stopping["STATUS"])
        self.assertEqual(gw.wait(10), 0)

    def test_reload_sends_reloading_then_ready(self):
        cfg = basic_config([self.s1], tls=False)
        gw = self.gateway(cfg, env={"NOTIFY_SOCKET": self.path})
        self.messages("READY=1")
        gw.reload()
        got = self.messages("READY=1")
        self.assertEqual(got[0].get("RELOADING"), "1", got)
        self.assertTrue(got[0].get("MONOTONIC_USEC", "").isdigit(), got)
        self.assertIn("generation 2", got[-1]["STATUS"])
        # A refused reload ends with READY=1 too (the old configuration serves).
        with open(gw.config_path, "a") as f:
            f.write("no_such_key: 1\n")
        gw.reload()
        got = self.messages("READY=1")
        self.assertEqual(got[0].get("RELOADING"), "1", got)
        self.assertIn("reload refused", got[-1]["STATUS"])

    def test_upgrade_sends_mainpid_from_the_new_process(self):
        gw = self.gateway(basic_config([self.s1], tls=False), env={"NOTIFY_SOCKET": self.path},
                          args=["--pid-file", self.pid_path])
        self.messages("READY=1")
        gw.send_signal(signal.SIGUSR2)
        took_over = self.messages("MAINPID=")
        self.assertEqual(gw.wait(15), 0, gw.stderr())
        with open(self.pid_path) as f:
            new_pid = int(f.read())
        self.addCleanup(stop_pid, new_pid)
        self.assertEqual(took_over[-1]["MAINPID"], str(new_pid))
        self.assertEqual(took_over[-1]["READY"], "1")
        self.assertFalse(any("STOPPING" in m for m in took_over),
                         "the old process must not tell systemd the service stops: %r" % took_over)
        os.kill(new_pid, signal.SIGTERM)
        self.messages("STOPPING=1")
        stop_pid(new_pid)


if __name__ == "__main__":
    main()
