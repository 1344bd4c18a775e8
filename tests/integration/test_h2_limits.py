"""HTTP/2 limits that must cost one stream, never the connection (issue 16):
a stream past SETTINGS_MAX_CONCURRENT_STREAMS is refused alone, and uploads
stalled on a slow server can't starve a small POST of connection window."""

import hashlib
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from harness import GatewayTestCase, LOCAL, main  # noqa: E402
from h2client import (ERR, FLAG_END_HEADERS, FLAG_END_STREAM, HEADERS, H2Client, RawH2,  # noqa: E402
                      frame, headers_block)
from standin import h2_config  # noqa: E402


class StallServer:
    """Accepts connections and never reads them; its tiny receive buffer makes
    whoever writes to it block after a few KiB."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)

    def stop(self):
        self.stopped = True
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


class StreamLimitTest(GatewayTestCase):
    def test_a_stream_past_the_limit_is_refused_alone(self):
        s1 = self.servers("s1")
        gw = self.gateway(h2_config([s1], limits={"h2_max_concurrent_streams": 10}))
        port = gw.port("https")
        raw = RawH2(LOCAL, port)
        self.addCleanup(raw.close)
        self.assertTrue(raw.wait(lambda: raw.server_settings is not None, 10))
        self.assertEqual(raw.server_settings.get(3), 10, raw.server_settings)
        time.sleep(0.3)   # our SETTINGS ACK has arrived: the limit is in force

        def req(sid, path):
            return frame(HEADERS, FLAG_END_HEADERS | FLAG_END_STREAM, sid,
                         headers_block([(":method", "GET"), (":scheme", "https"),
                                        (":authority", "127.0.0.1:%d" % port), (":path", path)]))
        sids = [1 + 2 * i for i in range(11)]
        self.assertTrue(raw.send(b"".join(req(s, "/slow?ms=1000&s=%d" % s) for s in sids)))
        self.assertTrue(raw.wait(lambda: all(raw.status(s) is not None or s in raw.resets
                                             for s in sids), 15))
        self.assertEqual(raw.goaways, [], "the connection was ended for one stream too many")
        self.assertEqual(raw.resets, {sids[-1]: ERR["REFUSED_STREAM"]})
        self.assertEqual([raw.status(s) for s in sids[:-1]], [200] * 10)
        self.assertTrue(raw.wait(lambda: all(s in raw.ended for s in sids[:-1]), 10))
        # Room again: the next stream is served on the same connection.
        self.assertTrue(raw.send(req(23, "/?after=1")))
        self.assertTrue(raw.wait(lambda: raw.status(23) is not None, 10))
        self.assertEqual(raw.status(23), 200)
        self.assertEqual([s for _, r in [(0, q) for q in s1.requests] for s in [r.target]
                          if "s=%d" % sids[-1] in s], [], "the refused stream reached a server")


class UploadFairnessTest(GatewayTestCase):
    def test_small_post_completes_while_20_uploads_stall(self):
        stall = StallServer()
        self.addCleanup(stall.stop)
        s1 = self.servers("s1")
        cfg = h2_config([s1])
        cfg["backends"].append({"name": "stall", "servers": [
            {"name": "x1", "address": "127.0.0.1:%d" % stall.port}],
            "health_check": {"type": "none"}})
        for l in cfg["listeners"]:
            l.pop("backend")
            l["routes"] = [{"path_prefix": "/stall", "backend": "stall"},
                           {"path_prefix": "/", "backend": "app"}]
        gw = self.gateway(cfg)
        c = H2Client(LOCAL, gw.port("https"))
        self.addCleanup(c.close)
        sids = [c.request("POST", "/stall/up?i=%d" % i, [("content-length", str(16 << 20))],
                          end_stream=False) for i in range(20)]
        chunk = b"u" * (8 << 20)
        for sid in sids:   # each takes what the windows allow, then stalls
            try:
                c.send_data(sid, chunk, end_stream=False, timeout=0.3)
            except socket.timeout:
                pass
        body = os.urandom(1024)
        start = time.monotonic()
        sid = c.request("POST", "/upload", [("content-length", str(len(body)))], end_stream=False)
        try:
            c.send_data(sid, body, end_stream=True, timeout=5)
        except socket.timeout:
            self.fail("no connection window left for a small POST beside 20 stalled uploads")
        st = c.response(sid, 10)
        self.assertEqual(st.status, 200, st)
        self.assertEqual(st.json(), {"sha256": hashlib.sha256(body).hexdigest(), "length": 1024})
        self.assertLess(time.monotonic() - start, 5)
        c.close()
        stall.stop()


if __name__ == "__main__":
    main()
