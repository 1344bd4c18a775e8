"""The admin listener from a test's side (docs/behaviour.md#admin-listener): a keep-alive client and a
Prometheus text parser.

    admin = Admin(gw)                       # gw.port("admin"), no auth
    admin.put("/api/backends/app/servers/s1", {"state": "drain"}).status
    admin.server("app", "s1")["state"]      # from GET /api/backends
    m = admin.metrics()                     # parse_metrics(GET /metrics)
    value(m, "gateway_affinity_store_errors_total")
"""

import base64
import http.client
import json
import re

__all__ = ["Admin", "basic", "parse_metrics", "series", "value", "requests_total"]

LOCAL = "127.0.0.1"


def basic(user, password):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


class Admin:
    """A keep-alive HTTP/1.1 client for the admin listener."""

    def __init__(self, gw, auth=None, timeout=10):
        self.conn = http.client.HTTPConnection(LOCAL, gw.port("admin"), timeout=timeout)
        self.auth = auth

    def request(self, method, path, body=None, headers=None, auth=True):
        h = dict(headers or {})
        if auth and self.auth:
            h["Authorization"] = self.auth
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        if body is not None:
            h.setdefault("Content-Type", "application/json")
        self.conn.request(method, path, body=body, headers=h)
        r = self.conn.getresponse()
        data = r.read()
        r.body = data
        r.text = data.decode("utf-8", "replace")
        if r.getheader("connection", "").lower() == "close":
            self.conn.close()
        return r

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def put(self, path, body, **kw):
        return self.request("PUT", path, body=body, **kw)

    def json(self, path):
        r = self.get(path)
        assert r.status == 200, (path, r.status, r.text)
        return json.loads(r.body)

    def server(self, backend, name):
        for b in self.json("/api/backends")["backends"]:
            if b["name"] == backend:
                for s in b["servers"]:
                    if s["name"] == name:
                        return s
        raise AssertionError("no server %s/%s in /api/backends" % (backend, name))

    def metrics(self):
        r = self.get("/metrics")
        assert r.status == 200, (r.status, r.text)
        return parse_metrics(r.text)

    def close(self):
        self.conn.close()


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?')


def parse_metrics(text):
    """Prometheus text -> {(name, ((label, value), ...sorted)): float}; checks
    that every sample line parses and that every family has HELP and TYPE."""
    out = {}
    typed = set()
    for line in text.split("\n"):
        if not line:
            continue
        if line.startswith("# TYPE "):
            typed.add(line.split(" ")[2])
            continue
        if line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        assert m, "bad metrics line: %r" % line
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        pairs = []
        pos = 0
        while pos < len(labels):
            lm = _LABEL.match(labels, pos)
            assert lm, "bad labels in %r" % line
            v = lm.group(2).replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
            pairs.append((lm.group(1), v))
            pos = lm.end()
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in typed or family in typed, "no # TYPE for %s" % name
        key = (name, tuple(sorted(pairs)))
        assert key not in out, "duplicate series %r" % (key,)
        out[key] = float(value)
    return out


def series(metrics, name, **labels):
    """Samples of `name` whose labels include `labels`: {labels-dict-as-tuple: value}."""
    want = set(labels.items())
    return {k[1]: v for k, v in metrics.items() if k[0] == name and want <= set(k[1])}


def value(metrics, name, **labels):
    key = (name, tuple(sorted(labels.items())))
    return metrics.get(key)


def requests_total(metrics, **labels):
    return sum(series(metrics, "gateway_requests_total", **labels).values())
