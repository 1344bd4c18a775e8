"""Clients for the HA-pair test (tests/integration/test_ha_pair.py), run
inside the client's network namespace:

  ha_clients.py load URL OUT STOPFILE [CLIENTS]
      CLIENTS sessions (half keep the gateway's SRV cookie and the server's
      DEMOSESSION, half only DEMOSESSION: a learned session), each sending
      GETs on fresh connections until STOPFILE exists. Every attempt is a
      JSON line in OUT: {"t", "client", "ok", "server", "error"}. A failed
      attempt is retried after 100 ms, as a client would.
  ha_clients.py probe URL SESSIONS
      For each {"client", "cookie", "server"} in the JSON file SESSIONS, one
      GET with that cookie to URL (e.g. the standby's own address); prints
      {"client": server answering} as JSON.
"""

import http.client
import json
import os
import sys
import threading
import time
import urllib.parse


def parse_cookies(headers):
    out = {}
    for k, v in headers:
        if k.lower() == "set-cookie":
            name, _, rest = v.partition("=")
            out[name.strip()] = rest.split(";", 1)[0]
    return out


def get(url, cookie_header, timeout=1.0):
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout)
    try:
        h = {"Cookie": cookie_header} if cookie_header else {}
        c.request("GET", u.path or "/", headers=h)
        r = c.getresponse()
        r.read()
        return r.status, r.getheader("x-server"), r.getheaders()
    finally:
        c.close()


def load(url, out_path, stop_path, clients):
    lock = threading.Lock()
    out = open(out_path, "a", buffering=1)
    sessions = {}

    def record(**rec):
        rec["t"] = time.time()
        with lock:
            out.write(json.dumps(rec) + "\n")

    def client(i):
        learn_only = i % 2 == 1
        cookies = {}
        while not os.path.exists(stop_path):
            header = "; ".join("%s=%s" % kv for kv in cookies.items())
            try:
                status, server, headers = get(url, header)
                ok = status == 200
                if ok:
                    got = parse_cookies(headers)
                    if learn_only:
                        got.pop("SRV", None)
                    cookies.update(got)
                    with lock:
                        sessions[i] = {"client": i, "cookie": "; ".join(
                            "%s=%s" % kv for kv in cookies.items()), "server": server}
                record(client=i, ok=ok, server=server, error=None if ok else "status %d" % status)
                time.sleep(0.05)
            except Exception as e:  # noqa: BLE001
                record(client=i, ok=False, server=None, error=repr(e))
                time.sleep(0.1)

    def dump_sessions():
        with lock:
            text = json.dumps(list(sessions.values()))
        with open(out_path + ".sessions.tmp", "w") as f:
            f.write(text)
        os.replace(out_path + ".sessions.tmp", out_path + ".sessions")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    # The sessions as they are, twice a second, for probes while it runs.
    while any(t.is_alive() for t in threads):
        dump_sessions()
        time.sleep(0.5)
    dump_sessions()
    out.close()


def probe(url, sessions_path):
    with open(sessions_path) as f:
        sessions = json.load(f)
    seen = {}
    for s in sessions:
        try:
            status, server, _ = get(url, s["cookie"], timeout=2.0)
            seen[s["client"]] = server if status == 200 else "status %d" % status
        except Exception as e:  # noqa: BLE001
            seen[s["client"]] = repr(e)
    print(json.dumps(seen))


if __name__ == "__main__":
    if sys.argv[1] == "load":
        load(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]) if len(sys.argv) > 5 else 16)
    elif sys.argv[1] == "probe":
        probe(sys.argv[2], sys.argv[3])
    else:
        sys.exit("usage: ha_clients.py load URL OUT STOPFILE [CLIENTS] | probe URL SESSIONS")
