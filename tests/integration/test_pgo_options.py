"""The profile-guided build's CMake options (README, Build; CMakeLists.txt
SAG_PGO): a wrong value or a missing profile stops the configure with a
message that says what to do, instead of a build that silently has no
profile. (The whole profile-guided build, training included, is
test_bench_pgo_build: minutes, label bench.)"""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from harness import main  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def configure(build, *defs):
    return subprocess.run(["cmake", "-S", ROOT, "-B", build, "-G", "Ninja", "-DSAG_TESTS=OFF",
                           "-DCMAKE_CXX_COMPILER=g++", *defs],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)


def compile_commands(build, p):
    """The compile commands of a configure `p` that must have succeeded."""
    assert p.returncode == 0, p.stdout.decode(errors="replace")
    with open(os.path.join(build, "compile_commands.json")) as f:
        return f.read()


def message(p):
    """The configure's output with CMake's line wrapping undone."""
    return " ".join(p.stdout.decode(errors="replace").split())


class PgoOptionsTest(unittest.TestCase):
    def setUp(self):
        for tool in ("cmake", "ninja", "g++"):
            if not shutil.which(tool):
                self.skipTest("%s is not installed here" % tool)
        self.dir = tempfile.mkdtemp(prefix="sag-pgo-opt-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def test_use_without_profiles_names_the_folder_and_the_script(self):
        empty = os.path.join(self.dir, "no-profile")
        os.mkdir(empty)
        p = configure(os.path.join(self.dir, "b"), "-DSAG_PGO=use", "-DSAG_PGO_DIR=" + empty)
        out = message(p)
        self.assertNotEqual(p.returncode, 0, out)
        self.assertIn("no profiles (*.gcda) in " + empty, out)
        self.assertIn("bench/pgo_build.sh", out)

    def test_an_unknown_value_is_refused(self):
        p = configure(os.path.join(self.dir, "b"), "-DSAG_PGO=sometimes")
        out = message(p)
        self.assertNotEqual(p.returncode, 0, out)
        self.assertIn("SAG_PGO is 'sometimes': empty, generate or use", out)

    def test_generate_instruments_every_file(self):
        build = os.path.join(self.dir, "b")
        prof = os.path.join(self.dir, "prof")
        commands = compile_commands(
            build, configure(build, "-DSAG_PGO=generate", "-DSAG_PGO_DIR=" + prof))
        self.assertIn("-fprofile-generate=" + prof, commands)
        # Profiles named relative to the build folder, so that another
        # folder's SAG_PGO=use finds them.
        self.assertIn("-fprofile-prefix-path=" + os.path.realpath(build), commands)

    def test_use_carries_the_options_that_let_an_edited_source_build(self):
        # A source edited after the training no longer matches its profile:
        # these options make g++ warn and go on (coverage-mismatch) and
        # smooth counts that no longer fit the edited control flow (without
        # -fprofile-correction, "corrupted profile info" stopped the build
        # after an edit of forwarder.cc). Only the options are checked here;
        # building against a real profile is test_bench_pgo_build's.
        build = os.path.join(self.dir, "b")
        prof = os.path.join(self.dir, "prof")
        os.mkdir(prof)
        open(os.path.join(prof, "any.gcda"), "wb").close()
        commands = compile_commands(
            build, configure(build, "-DSAG_PGO=use", "-DSAG_PGO_DIR=" + prof))
        self.assertIn("-fprofile-use=" + prof, commands)
        self.assertIn("-Wno-error=coverage-mismatch", commands)
        self.assertIn("-fprofile-correction", commands)


if __name__ == "__main__":
    main()
