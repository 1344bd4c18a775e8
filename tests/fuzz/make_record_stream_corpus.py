#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_record_stream (record_stream_fuzz.cc's
script: 0 SEAL type len bytes, 1 RAW len bytes, 2 READ size-1, 3 WRITE len)."""
import os

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, 'corpus', 'record_stream')


def seal(t, content):
    return bytes([0, t, len(content)]) + bytes(content)


def raw(b):
    return bytes([1, len(b)]) + bytes(b)


def read(n):
    return bytes([2, n - 1])


def write(n):
    return bytes([3, n])


seeds = [
    # data read in pieces, a write, close_notify read as eof (twice)
    seal(23, b'hello world') + read(4) + read(100) + write(10) + seal(21, [1, 0]) + read(10) + read(10),
    # padded and empty records, a requested KeyUpdate, data under the new
    # key, our KeyUpdate going out with the next write
    seal(0, b'pad\x17\0\0\0') + seal(23, b'') + seal(22, [24, 0, 0, 1, 1]) + seal(23, b'after')
    + read(50) + read(50) + write(5) + read(9),
    # user_canceled (ignored), then the client's fatal alert
    seal(21, [1, 90]) + seal(23, b'x') + read(8) + seal(21, [2, 40]) + read(8) + read(8) + write(3),
    # forbidden after the handshake: a ticket from the client
    seal(22, [4, 0, 0, 1, 0]) + read(16) + read(16),
    # an unprotected alert, a record over the limit, one that fails to open
    raw([0x15, 3, 3, 0, 2, 2, 40]) + read(16),
    raw([0x17, 3, 3, 0x41, 0x01]) + read(16),
    raw([0x17, 3, 3, 0, 20] + [7] * 20) + read(16) + write(1),
    # a record bigger than the reads: decrypted bytes wait in the stream
    seal(23, b'A' * 200) + read(1) + read(255) + read(255),
    # a KeyUpdate not ending its record; a record of padding only
    seal(22, [24, 0, 0, 1, 0, 1]) + read(5),
    seal(0, [0, 0, 0]) + read(5),
]

os.makedirs(out, exist_ok=True)
for i, s in enumerate(seeds):
    with open(os.path.join(out, 'seed-%d' % i), 'wb') as f:
        f.write(s)
