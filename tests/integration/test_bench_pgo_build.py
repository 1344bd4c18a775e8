"""The profile-guided build (README, Build: bench/pgo_build.sh) from end to
end, into a scratch folder: the instrumented build, its training traffic,
the build from the profile. Two builds of the gateway: minutes, hence the
ctest label bench (`cd build && ctest -L bench`).

Checked: the training wrote a profile for the data path's files, the final
build compiled them with it (and g++ found it: hot code sections), and the
gateway it built serves a sticky HTTPS request through to a server."""

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from harness import GatewayTestCase, basic_config, srv_cookie, main  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
HOT = ("session/http2/http2_session.cc", "session/forward/forwarder.cc",
       "session/http1/http1_session.cc", "tls/tls_socket_stream.cc")


class PgoBuildTest(GatewayTestCase):
    @classmethod
    def setUpClass(cls):
        for tool in ("cmake", "ninja", "g++", "h2load", "curl", "openssl", "objdump"):
            if not shutil.which(tool):
                raise unittest.SkipTest("%s is not installed here" % tool)
        cls.dir = tempfile.mkdtemp(prefix="sag-pgo-")
        cls.build = os.path.join(cls.dir, "build")
        # In its own process group: on a timeout the script's servers and
        # gateway go too (its EXIT trap does not run when it is killed).
        p = subprocess.Popen([os.path.join(ROOT, "bench", "pgo_build.sh"), cls.build, "-DSAG_TESTS=OFF"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            out, _ = p.communicate(timeout=1500)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, _ = p.communicate()
        cls.output = out.decode(errors="replace")
        if p.returncode != 0:
            shutil.rmtree(cls.dir, True)
            raise AssertionError("bench/pgo_build.sh failed (%s):\n%s" % (p.returncode, cls.output[-6000:]))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, True)

    def test_the_training_profiled_the_data_path(self):
        profiles = glob.glob(os.path.join(self.build, "pgo-profile", "*.gcda"))
        names = {os.path.basename(p) for p in profiles}
        for src in HOT:
            lib = "sag_" + src.split("/")[0]
            want = "#".join([src.split("/")[0], "CMakeFiles", lib + ".dir"] + src.split("/")[1:]) + ".gcda"
            self.assertIn(want, names, "no profile for %s among %d" % (src, len(names)))
            self.assertGreater(os.path.getsize(os.path.join(self.build, "pgo-profile", want)), 0)

    def test_the_final_build_compiled_the_data_path_with_the_profile(self):
        with open(os.path.join(self.build, "compile_commands.json")) as f:
            commands = {os.path.relpath(c["file"], ROOT): c["command"] for c in json.load(f)}
        profile = os.path.join(self.build, "pgo-profile")
        for src in HOT:
            self.assertIn(src, commands)
            self.assertIn("-fprofile-use=" + profile, commands[src])
            self.assertNotIn("-fprofile-generate", commands[src])

    def test_the_profile_was_read(self):
        # g++ places functions the profile found hot in .text.hot, which a
        # build without a profile never has; a profile it could not find
        # (misnamed, -Wno-missing-profile) would leave none.
        for src in HOT:
            top, rest = src.split("/", 1)
            obj = os.path.join(self.build, top, "CMakeFiles", "sag_%s.dir" % top, rest + ".o")
            p = subprocess.run(["objdump", "-h", obj], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=60)
            self.assertEqual(p.returncode, 0, p.stdout.decode(errors="replace"))
            self.assertIn(".text.hot", p.stdout.decode(errors="replace"), obj)

    def test_the_gateway_it_built_serves_sticky_requests(self):
        os.environ["SAG_BIN_DIR"], saved = os.path.join(self.build, "bin"), os.environ.get("SAG_BIN_DIR")
        try:
            servers = self.servers("s1", "s2")
            gw = self.gateway(basic_config(servers))
            first = self.fresh_get(gw, "https", "/")
            self.assertStatus(first, 200, gw)
            cookie = srv_cookie(first)
            self.assertIsNotNone(cookie, first)
            for _ in range(4):
                again = self.fresh_get(gw, "https", "/", headers=[("Cookie", "SRV=" + cookie)])
                self.assertStatus(again, 200, gw)
                self.assertEqual(again.header("x-server"), first.header("x-server"))
        finally:
            if saved is None:
                del os.environ["SAG_BIN_DIR"]
            else:
                os.environ["SAG_BIN_DIR"] = saved


if __name__ == "__main__":
    main()
