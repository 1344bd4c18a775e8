#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_h2 (tests/fuzz/h2_fuzz.cc) into corpus/h2/.

Each seed is one control byte (how the frames are written, what the
harness's server answers, how the client ends: see h2_fuzz.cc) followed by
raw HTTP/2 frames, sent after the preface and an empty SETTINGS frame.
Header blocks are HPACK without Huffman or dynamic-table entries, built
here by hand so the script needs nothing beyond Python itself.

    python3 tests/fuzz/make_h2_corpus.py      # rewrites corpus/h2/*
"""

import os
import struct

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIO = 0x20

# Control byte (h2_fuzz.cc).
WHOLE, PER_FRAME, PIECES_5, PIECES_61 = range(4)
SMALL, CHUNKED, LARGE, INTERIM, CLOSE_DELIMITED, GARBAGE, HANG_UP, TRUNCATED = range(8)
HALF_CLOSE = 0x20
GRACEFUL_STOP = 0x40
STOP_READING = 0x80


def control(split=WHOLE, reply=SMALL, flags=0):
    return bytes([split | reply << 2 | flags])


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", sid & 0x7FFFFFFF) + payload


def hpack_int(value, prefix_bits, first=0):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def hpack_str(s):
    b = s.encode() if isinstance(s, str) else s
    return hpack_int(len(b), 7) + b


# RFC 7541 Appendix A: exact pairs, then names.
STATIC_PAIRS = {(":method", "GET"): 2, (":method", "POST"): 3, (":path", "/"): 4,
                (":scheme", "http"): 6, (":scheme", "https"): 7, (":status", "200"): 8}
STATIC_NAMES = {":authority": 1, ":method": 2, ":path": 4, ":scheme": 6, "content-length": 28,
                "content-type": 31, "cookie": 32, "host": 38, "user-agent": 58}


def block(headers):
    """A header block: indexed when the static table has the pair, else a
    literal without indexing (with the static name when there is one)."""
    out = b""
    for name, value in headers:
        if (name, value) in STATIC_PAIRS:
            out += hpack_int(STATIC_PAIRS[(name, value)], 7, 0x80)
        elif name in STATIC_NAMES:
            out += hpack_int(STATIC_NAMES[name], 4) + hpack_str(value)
        else:
            out += b"\x00" + hpack_str(name) + hpack_str(value)
    return out


def request(method="GET", path="/", authority="example.com", extra=()):
    h = [(":method", method), (":scheme", "https"), (":path", path)]
    if authority is not None:
        h.append((":authority", authority))
    return block(h + list(extra))


def get(sid, path="/", extra=()):
    return frame(HEADERS, END_STREAM | END_HEADERS, sid, request("GET", path, extra=extra))


def settings(pairs):
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in pairs))


def window_update(sid, n):
    return frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", n))


def seeds():
    post_head = request("POST", "/upload", extra=[("content-length", "11"),
                                                  ("content-type", "text/plain")])
    yield "get", control(WHOLE, SMALL) + get(1, extra=[("user-agent", "seed/1"),
                                                        ("cookie", "a=1"), ("cookie", "b=2")])
    yield "post-data", control(PER_FRAME, CHUNKED) + frame(HEADERS, END_HEADERS, 1, post_head) + \
        frame(DATA, 0, 1, b"hello") + frame(DATA, END_STREAM, 1, b" world")
    # A body without length (goes chunked to the server), padded frames and
    # a priority block on the HEADERS.
    padded_block = bytes([4]) + struct.pack(">IB", 0, 15) + request("POST", "/p") + b"\0" * 4
    yield "post-padded", control(PIECES_61, INTERIM) + \
        frame(HEADERS, END_HEADERS | PADDED | PRIO, 1, padded_block) + \
        frame(DATA, PADDED, 1, bytes([3]) + b"abc" + b"\0" * 3) + frame(DATA, END_STREAM, 1, b"")
    b = request("GET", "/continued", extra=[("x-long", "v" * 40)])
    yield "continuation", control(PIECES_5, SMALL) + frame(HEADERS, END_STREAM, 1, b[:10]) + \
        frame(CONTINUATION, 0, 1, b[10:30]) + frame(CONTINUATION, END_HEADERS, 1, b[30:])
    yield "rst-stream", control(PER_FRAME, TRUNCATED) + \
        frame(HEADERS, END_HEADERS, 1, request("POST", "/slow")) + \
        frame(RST_STREAM, 0, 1, struct.pack(">I", 8)) + get(3) + \
        frame(RST_STREAM, 0, 3, struct.pack(">I", 8))
    yield "ping", control(WHOLE, SMALL) + frame(PING, 0, 0, b"12345678") + get(1) + \
        frame(PING, ACK, 0, b"87654321") + frame(PING, 0, 0, b"abcdefgh")
    # A response larger than the initial window: it completes only as the
    # client's WINDOW_UPDATEs arrive.
    yield "window-update", control(PER_FRAME, LARGE) + get(1) + window_update(0, 1 << 20) + \
        window_update(1, 40000) + window_update(1, 40000)
    yield "settings", control(WHOLE, LARGE) + \
        settings([(1, 0), (2, 0), (4, 1 << 20), (5, 32768), (6, 8192)]) + \
        frame(SETTINGS, ACK, 0) + window_update(0, 1 << 20) + get(1)
    # A header block whose index is past both tables: COMPRESSION_ERROR.
    yield "bad-hpack", control(WHOLE, SMALL) + \
        frame(HEADERS, END_STREAM | END_HEADERS, 1, request("GET") + b"\xff\xff\x7f")
    # Past the limit of 8: REFUSED_STREAM for the later ones.
    yield "many-streams", control(WHOLE, TRUNCATED) + \
        b"".join(get(sid, "/s%d" % sid) for sid in range(1, 25, 2))
    yield "goaway", control(PER_FRAME, SMALL, HALF_CLOSE) + get(1) + \
        frame(GOAWAY, 0, 0, struct.pack(">II", 1, 0) + b"bye")
    # Malformed requests the session answers itself: no :path (nghttp2
    # resets it), :authority and Host disagreeing (400), uppercase name.
    yield "malformed", control(PER_FRAME, SMALL) + \
        frame(HEADERS, END_STREAM | END_HEADERS, 1,
              block([(":method", "GET"), (":scheme", "https"), (":authority", "a")])) + \
        get(3, extra=[("host", "other.example")]) + get(5, extra=[("X-Upper", "1")]) + \
        frame(HEADERS, END_STREAM | END_HEADERS, 7,
              block([(":method", "GET"), (":scheme", "https"), (":path", "/")]))
    yield "too-large", control(WHOLE, SMALL) + \
        get(1, extra=[("x-big", "v" * 1200), ("x-big2", "v" * 1200), ("x-big3", "v" * 1200),
                      ("x-big4", "v" * 1200)]) + \
        frame(HEADERS, END_STREAM | END_HEADERS, 3,
              request("POST", "/up", extra=[("content-length", "100000")])) + \
        frame(HEADERS, END_HEADERS, 5, request("POST", "/up2")) + \
        frame(DATA, 0, 5, b"z" * 1500) + frame(DATA, END_STREAM, 5, b"z" * 1500)
    yield "trailers", control(PER_FRAME, CHUNKED) + \
        frame(HEADERS, END_HEADERS, 1, request("POST", "/t")) + frame(DATA, 0, 1, b"body") + \
        frame(HEADERS, END_STREAM | END_HEADERS, 1, block([("x-trailer", "1")]))
    yield "expect-continue", control(PER_FRAME, INTERIM) + \
        frame(HEADERS, END_HEADERS, 1,
              request("POST", "/e", extra=[("expect", "100-continue"), ("content-length", "3")])) + \
        frame(DATA, END_STREAM, 1, b"abc")
    yield "server-fails", control(WHOLE, HANG_UP) + get(1) + \
        frame(HEADERS, END_STREAM | END_HEADERS, 3,
              request("POST", "/x", extra=[("content-length", "0")]))
    yield "bad-response", control(WHOLE, GARBAGE) + get(1)
    yield "close-delimited", control(WHOLE, CLOSE_DELIMITED) + get(1) + get(3)
    yield "graceful-stop", control(WHOLE, TRUNCATED, GRACEFUL_STOP) + get(1) + get(3)
    yield "idle-stop", control(WHOLE, SMALL, GRACEFUL_STOP | HALF_CLOSE) + get(1)
    # A client that never reads while asking for PING acks: the outbound
    # queue floods (nghttp2_option_set_max_outbound_ack).
    yield "ping-flood", control(WHOLE, SMALL, STOP_READING) + \
        frame(PING, 0, 0, b"floodfld") * 1200
    # More SETTINGS to acknowledge in one read than nghttp2 queues
    # (max_outbound_ack): NGHTTP2_ERR_FLOODED, the connection is reset.
    yield "settings-flood", control(WHOLE, SMALL, STOP_READING) + frame(SETTINGS, 0, 0) * 1500
    yield "no-reader-large", control(WHOLE, LARGE, STOP_READING) + \
        settings([(4, 1 << 20)]) + window_update(0, 1 << 20) + get(1) + get(3)
    # Requests without any authority (400), with an empty one, and CONNECT
    # (no :path, :authority naming the target).
    yield "no-authority", control(PER_FRAME, SMALL) + \
        frame(HEADERS, END_STREAM | END_HEADERS, 1, request("GET", "/na", authority=None)) + \
        frame(HEADERS, END_STREAM | END_HEADERS, 3, request("GET", "/ea", authority="")) + \
        frame(HEADERS, END_HEADERS, 5,
              block([(":method", "CONNECT"), (":authority", "example.com:443")])) + \
        frame(DATA, END_STREAM, 5, b"tunnel")
    # A stop while two streams are in flight; two more arrive after it.
    yield "stop-midway", control(PER_FRAME, SMALL, GRACEFUL_STOP) + \
        frame(HEADERS, END_HEADERS, 1, request("POST", "/a")) + \
        frame(HEADERS, END_HEADERS, 3, request("POST", "/b")) + \
        frame(DATA, END_STREAM, 1, b"a") + get(5) + get(7) + frame(DATA, END_STREAM, 3, b"b")
    # The input brings its own preface, a wrong one: the session refuses
    # the connection (GOAWAY).
    yield "bad-preface", control(WHOLE, SMALL) + b"PRI * HTTP/2.0\r\n\r\nSX\r\n\r\n" + \
        frame(SETTINGS, 0, 0) + get(1)
    yield "window-overflow", control(WHOLE, SMALL) + get(1) + window_update(0, 0x7FFFFFFF)
    yield "data-on-idle", control(WHOLE, SMALL) + frame(DATA, END_STREAM, 9, b"x") + get(1)


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "h2")
    os.makedirs(out, exist_ok=True)
    for name, data in seeds():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
