"""The Debian package (SPEC §1, examples/package/): `cpack -G DEB` in the
build folder makes it; installed into a scratch root (dpkg-deb -x), the
gateway is /usr/sbin/sag, the example config /etc/sag/sag.yaml passes
`--check` once a certificate is in /etc/sag/certs/, the unit is there, the
config is a conffile, the maintainer scripts create the `sag` user, and
Depends come from the shared libraries the binary links."""

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from gateway import bin_dir, make_cert  # noqa: E402
from harness import main  # noqa: E402


def run(args, **kw):
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=240,
                          **kw)


class PackageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        for tool in ("cpack", "dpkg-deb", "dpkg-shlibdeps"):
            if not shutil.which(tool):
                raise unittest.SkipTest("%s is not installed here" % tool)
        build = os.path.dirname(os.path.abspath(bin_dir()))
        cls.out = tempfile.mkdtemp(prefix="sag-deb-")
        cls.addClassCleanup(shutil.rmtree, cls.out, True)   # also when setUpClass fails
        p = run(["cpack", "-G", "DEB", "-B", cls.out], cwd=build)
        if p.returncode != 0:
            raise AssertionError("cpack failed:\n" + p.stdout.decode(errors="replace"))
        debs = glob.glob(os.path.join(cls.out, "*.deb"))
        if len(debs) != 1:
            raise AssertionError("want one .deb in %s, got %r" % (cls.out, debs))
        cls.deb = debs[0]
        cls.root = os.path.join(cls.out, "root")
        p = run(["dpkg-deb", "-x", cls.deb, cls.root])
        if p.returncode != 0:
            raise AssertionError(p.stdout.decode(errors="replace"))
        cls.control = os.path.join(cls.out, "control")
        p = run(["dpkg-deb", "-e", cls.deb, cls.control])
        if p.returncode != 0:
            raise AssertionError(p.stdout.decode(errors="replace"))

    def field(self, name):
        return run(["dpkg-deb", "-f", self.deb, name]).stdout.decode().strip()

    def test_files_are_where_spec_says(self):
        for path, mode in (("usr/sbin/sag", 0o755), ("etc/sag/sag.yaml", 0o644),
                           ("lib/systemd/system/sag.service", 0o644)):
            full = os.path.join(self.root, path)
            self.assertTrue(os.path.isfile(full), path)
            self.assertEqual(os.stat(full).st_mode & 0o777, mode, path)
        self.assertTrue(os.path.isdir(os.path.join(self.root, "etc/sag/certs")))
        self.assertTrue(os.path.isfile(os.path.join(self.root, "usr/share/doc/sag/behaviour.md")))
        p = run([os.path.join(self.root, "usr/sbin/sag"), "--version"])
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertIn(b"sag ", p.stdout)

    def test_installed_config_passes_check_once_a_certificate_is_dropped_in(self):
        etc = tempfile.mkdtemp(prefix="sag-etc-")
        self.addCleanup(shutil.rmtree, etc, True)
        shutil.copytree(os.path.join(self.root, "etc/sag"), etc, dirs_exist_ok=True)
        sag = os.path.join(self.root, "usr/sbin/sag")
        conf = os.path.join(etc, "sag.yaml")
        p = run([sag, "--check", "--config", conf])
        self.assertEqual(p.returncode, 1, "no certificate yet: %s" % p.stdout)
        make_cert(os.path.join(etc, "certs"))
        p = run([sag, "--check", "--config", conf])
        self.assertEqual(p.returncode, 0, p.stdout.decode(errors="replace"))
        self.assertIn(b"ok", p.stdout)

    def test_control_conffiles_scripts_and_depends(self):
        self.assertEqual(self.field("Package"), "sag")
        depends = self.field("Depends")
        for lib in ("libssl3", "libnghttp2-14", "libhiredis0.14", "libyaml-cpp0.7", "libsystemd0",
                    "adduser"):
            self.assertIn(lib, depends)
        with open(os.path.join(self.control, "conffiles")) as f:
            self.assertIn("/etc/sag/sag.yaml", f.read().split())
        with open(os.path.join(self.control, "postinst")) as f:
            postinst = f.read()
        self.assertIn("adduser --system", postinst)
        self.assertEqual(os.stat(os.path.join(self.control, "postinst")).st_mode & 0o777, 0o755)
        # The unit installed is the one the unit test verifies, pointing at
        # the installed binary and config.
        with open(os.path.join(self.root, "lib/systemd/system/sag.service")) as f:
            unit = f.read()
        self.assertIn("ExecStart=/usr/sbin/sag --config /etc/sag/sag.yaml", unit)
        self.assertIn("ExecReload=/bin/kill -HUP $MAINPID", unit)


if __name__ == "__main__":
    main()
