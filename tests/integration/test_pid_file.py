"""The pid file (docs/behaviour.md#signals): `--pid-file PATH` and `pid_file:`,
written once the listeners accept, removed at exit unless another process has
written its own pid there since."""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from gateway import Gateway, run_gateway  # noqa: E402
from harness import GatewayTestCase, basic_config, main  # noqa: E402


def read(path, wait=5.0):
    """The file's contents; waits for it (the port may answer a moment
    before the file is written)."""
    deadline = time.monotonic() + wait
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.01)
    with open(path) as f:
        return f.read()


class PidFileTest(GatewayTestCase):
    def setUp(self):
        self.s1 = self.servers("s1")
        self.dir = self.temp_dir("sag-pid-")

    def test_command_line_pid_file_is_written_while_serving_and_removed_at_exit(self):
        path = os.path.join(self.dir, "sag.pid")
        gw = self.gateway(basic_config([self.s1], tls=False), args=["--pid-file", path])
        # Start() returned once the port answered; the file is written right
        # after the listeners accept.
        self.assertStatus(self.fresh_get(gw, "http", "/"), 200, gw)
        self.assertEqual(read(path), "%d\n" % gw.proc.pid)
        self.assertFalse(os.path.exists(path + ".tmp"))
        self.assertEqual(gw.stop(), 0, gw.stderr())
        self.assertFalse(os.path.exists(path), "the pid file outlived the process")

    def test_config_pid_file_is_relative_to_the_config_file(self):
        cfg = basic_config([self.s1], tls=False)
        cfg["pid_file"] = "run/sag.pid"
        gw = self.gateway(cfg, start=False)
        os.makedirs(os.path.join(gw.dir, "run"))
        gw.start()
        self.assertStatus(self.fresh_get(gw, "http", "/"), 200, gw)
        path = os.path.join(gw.dir, "run", "sag.pid")
        self.assertEqual(read(path), "%d\n" % gw.proc.pid)
        self.assertEqual(gw.stop(), 0, gw.stderr())
        self.assertFalse(os.path.exists(path))

    def test_a_pid_written_by_another_process_stays(self):
        path = os.path.join(self.dir, "sag.pid")
        gw = self.gateway(basic_config([self.s1], tls=False), args=["--pid-file", path])
        self.assertEqual(read(path), "%d\n" % gw.proc.pid)
        with open(path, "w") as f:   # as an upgraded process would
            f.write("999999\n")
        self.assertEqual(gw.stop(), 0, gw.stderr())
        self.assertEqual(read(path), "999999\n")

    def test_unwritable_pid_file_stops_the_gateway(self):
        path = os.path.join(self.dir, "missing", "sag.pid")
        gw = Gateway(basic_config([self.s1], tls=False), start=False, args=["--pid-file", path])
        gw._render()
        p = run_gateway(["--config", gw.config_path, "--pid-file", path], timeout=30)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("pid file: %s.tmp: No such file or directory; stopping" % path, p.stderr)

    def test_check_names_a_pid_file_folder_that_does_not_exist(self):
        cfg = basic_config([self.s1], tls=False)
        cfg["pid_file"] = "/nonexistent-sag-dir/sag.pid"
        gw = Gateway(cfg, start=False)
        gw._render()
        p = run_gateway(["--check", "--config", gw.config_path])
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertRegex(p.stderr, r"gateway\.yaml:\d+:\d+: 'pid_file': no such directory: /nonexistent-sag-dir")


if __name__ == "__main__":
    main()
