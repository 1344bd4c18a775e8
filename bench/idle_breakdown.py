#!/usr/bin/env python3
"""Bytes per idle TLS connection, by part (issue 12 item 2).

Runs tests/integration/test_bench_idle_memory's scenario (1 worker, 2,000
TLS keep-alive connections, each handshaken, given one request, then idle)
with the gateway under bench/live_heap (LD_PRELOAD): recording starts after
the warm-up, and once every connection is idle the heap still held is
written out by call stack. Stacks are put in parts, and each part is divided
by the connection count:

  openssl        what libssl/libcrypto allocated (the SSL object and its
                 session, cipher and key contexts; after a TLS 1.3 hand-over
                 only the two AEAD contexts)
  tls            the RecordStream that carries a TLS 1.3 connection after
                 the handshake (tls/record_stream.h)
  socket         Asio's reactor state per socket
  frames         coroutine frames and pending operations (the connection's
                 coroutines and what they wait in)
  buffers        4, 16 and 17 KiB blocks (head, relay and TLS record buffers) that the
                 worker's caches kept from the requests: bounded by the
                 requests in flight at once (200 here), not by connections
  other          the rest

Usage: bench/idle_breakdown.sh (builds the tracker, then runs this).
Needs gdb, addr2line and the Release build. Prints a table and the largest
stacks; RSS figures from the same run for comparison."""

import os
import re
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))

import test_bench_idle_memory as idle  # noqa: E402

TRACKER = os.environ["SAG_LIVE_HEAP_SO"]
GATEWAY = os.path.join(ROOT, "build", "bin", "gateway")
WORK = tempfile.mkdtemp(prefix="sag-idle-breakdown-")
DUMP = os.path.join(WORK, "live.txt")


def gdb_call(pid, expr):
    subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex", "call (void)" + expr],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120, check=False)


_stage = [0]
_status = idle.proc_status_kib


def staged_status(pid, *keys):
    """The test reads /proc status after the warm-up, after the handshakes
    and once idle: recording starts at the first, the dump is the third."""
    r = _status(pid, *keys)
    _stage[0] += 1
    if _stage[0] == 1:
        gdb_call(pid, "live_heap_on()")
    elif _stage[0] == 3:
        gdb_call(pid, 'live_heap_dump("%s")' % DUMP)
    return r


def parse(path):
    stacks, cur = [], None
    with open(path) as f:
        for line in f:
            m = re.match(r"== (\d+) (\d+)", line)
            if m:
                cur = [int(m.group(1)), int(m.group(2)), []]
                stacks.append(cur)
            elif cur is not None and line.startswith("   "):
                cur[2].append(line.strip())
    return stacks


def symbolize(stacks):
    offsets = sorted({m.group(1) for _, _, frames in stacks for fr in frames
                      for m in [re.search(r"gateway\(\+(0x[0-9a-f]+)\)", fr)] if m})
    if not offsets:
        return {}
    out = subprocess.run(["addr2line", "-f", "-C", "-e", GATEWAY] + offsets,
                         stdout=subprocess.PIPE, text=True, check=False).stdout.split("\n")
    return {off: out[2 * i] for i, off in enumerate(offsets)}


def part_of(bytes_, count, frames, names):
    size = bytes_ // max(count, 1)
    if frames and ("libssl" in frames[0] or "libcrypto" in frames[0]):
        return "openssl"
    text = " ".join(names.get(m.group(1), "") for fr in frames
                    for m in [re.search(r"gateway\(\+(0x[0-9a-f]+)\)", fr)] if m)
    if "allocate_descriptor_state" in text:
        return "socket"
    if "hand_over" in text or "RecordStream" in text:
        return "tls"
    if size in (4096, 16384, 17408):
        return "buffers"
    if "sag::" in text or "boost::asio" in text:
        return "frames"
    return "other"


def first_sag_frame(frames, names):
    for fr in frames:
        m = re.search(r"gateway\(\+(0x[0-9a-f]+)\)", fr)
        if m and names.get(m.group(1)):
            return names[m.group(1)][:90]
    return frames[0][:90] if frames else "?"


def main():
    wrapper_dir = os.path.join(WORK, "bin")
    os.makedirs(wrapper_dir)
    for name in os.listdir(os.path.dirname(GATEWAY)):
        if name != "gateway":
            os.symlink(os.path.join(os.path.dirname(GATEWAY), name), os.path.join(wrapper_dir, name))
    with open(os.path.join(wrapper_dir, "gateway"), "w") as f:
        f.write("#!/bin/sh\nLD_PRELOAD=%s exec %s \"$@\"\n" % (TRACKER, GATEWAY))
    os.chmod(os.path.join(wrapper_dir, "gateway"), 0o755)
    os.environ["SAG_BIN_DIR"] = wrapper_dir
    idle.proc_status_kib = staged_status
    # The test's own RSS figures and ceiling mean nothing here: the
    # tracker's table and stacks are in the process too.
    with open(os.devnull, "w") as quiet:
        unittest.TextTestRunner(stream=quiet, verbosity=0).run(
            unittest.defaultTestLoader.loadTestsFromTestCase(idle.IdleMemoryTest))
    if not os.path.exists(DUMP):
        print("no heap dump (gdb could not attach?)", file=sys.stderr)
        return 1
    conns = idle.CONNS
    stacks = parse(DUMP)
    names = symbolize(stacks)
    parts = {}
    for bytes_, count, frames in stacks:
        p = part_of(bytes_, count, frames, names)
        parts[p] = parts.get(p, 0) + bytes_
    total = sum(parts.values())
    print("\nheap held per idle TLS connection, by part (%d connections, 1 worker):" % conns)
    for p in ("openssl", "tls", "socket", "frames", "buffers", "other"):
        print("  %-8s %8.0f B" % (p, parts.get(p, 0) / conns))
    print("  %-8s %8.0f B" % ("total", total / conns))
    print("\nlargest stacks held by most connections (bytes per allocation x allocations):")
    shown = 0
    for bytes_, count, frames in stacks:
        if count < conns * 0.8:
            continue
        print("  %6d B x %5d  %-8s %s" % (bytes_ // count, count, part_of(bytes_, count, frames, names),
                                          first_sag_frame(frames, names)))
        shown += 1
        if shown == 20:
            break
    return 0


if __name__ == "__main__":
    sys.exit(main())
