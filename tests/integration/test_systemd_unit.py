"""The systemd unit (examples/systemd/sag.service): `systemd-analyze verify`
finds nothing wrong with it (the binary's path pointed at this build), and it
has what SPEC §1 and the service's hardening need."""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from gateway import gateway_bin  # noqa: E402
from harness import main  # noqa: E402

UNIT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "systemd",
                    "sag.service")


def settings():
    out = {}
    with open(UNIT) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith(("#", "[")) and "=" in line:
                k, v = line.split("=", 1)
                out.setdefault(k, []).append(v)
    return out


class SystemdUnitTest(unittest.TestCase):
    def test_systemd_analyze_verify_is_clean(self):
        tool = shutil.which("systemd-analyze")
        if not tool:
            self.skipTest("systemd-analyze is not installed here")
        d = tempfile.mkdtemp(prefix="sag-unit-")
        self.addCleanup(shutil.rmtree, d, True)
        with open(UNIT) as f:
            text = f.read().replace("/usr/sbin/sag", gateway_bin())
        path = os.path.join(d, "sag.service")
        with open(path, "w") as f:
            f.write(text)
        p = subprocess.run([tool, "verify", path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=60)
        self.assertEqual((p.returncode, p.stdout.decode()), (0, ""))

    def test_the_unit_has_what_the_service_needs(self):
        s = settings()
        self.assertEqual(s["Type"], ["notify"])
        self.assertEqual(s["NotifyAccess"], ["all"], "the upgraded process sends MAINPID= itself")
        self.assertIn("-HUP", s["ExecReload"][0])
        self.assertEqual(s["Restart"], ["on-failure"])
        self.assertIn("--pid-file", s["ExecStart"][0])
        for key, value in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                           ("ProtectHome", "yes"), ("PrivateTmp", "yes"),
                           ("CapabilityBoundingSet", "CAP_NET_BIND_SERVICE"),
                           ("AmbientCapabilities", "CAP_NET_BIND_SERVICE"), ("User", "sag")):
            self.assertEqual(s.get(key), [value], key)
        self.assertIn("LimitNOFILE", s)


if __name__ == "__main__":
    main()
