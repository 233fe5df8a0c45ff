#!/usr/bin/env python3
"""A loopback HTTP proxy in front of a real server (Bugsink, the OTLP
receiver) that answers the first requests with the faults it is given, then
forwards the rest, for errsnap's forwarding tests (tests/forward.rs).

    fault_proxy.py UPSTREAM_PORT LOG_FILE SCHEDULE [bodies]

SCHEDULE is a comma-separated list, one entry per request in order:
`pass` (forward), `STATUS` (answer it), `STATUS:SECONDS` (with Retry-After),
`drop` (close the connection without an answer). Requests beyond the list
are forwarded. Each request is logged as one JSON line (its number, path,
what was answered, when, and its size; with `bodies`, the body itself,
base64, as `body`). Prints `READY <port>` when
listening on an ephemeral port.
"""
import base64
import http.client
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

UPSTREAM = int(sys.argv[1])
LOG = open(sys.argv[2], "a", buffering=1)
SCHEDULE = [s for s in sys.argv[3].split(",") if s] if len(sys.argv) > 3 else []
BODIES = len(sys.argv) > 4 and sys.argv[4] == "bodies"
LOCK = threading.Lock()
COUNT = [0]
KEEP = ("content-type", "content-encoding", "x-sentry-auth", "x-honeycomb-team")
RELAY = ("content-type", "retry-after", "x-sentry-rate-limits")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with LOCK:
            n = COUNT[0]
            COUNT[0] += 1
        step = SCHEDULE[n] if n < len(SCHEDULE) else "pass"
        entry = {"n": n, "path": self.path, "t": time.time(), "bytes": len(body),
                 "headers": {k.lower(): v for k, v in self.headers.items()
                             if k.lower() in KEEP}}
        if BODIES:
            entry["body"] = base64.b64encode(body).decode()
        if step == "drop":
            entry["answered"] = "drop"
            LOG.write(json.dumps(entry) + "\n")
            self.close_connection = True
            self.connection.close()
            return
        if step != "pass":
            status, _, after = step.partition(":")
            payload = b'{"detail":"fault injected by the test"}'
            self.send_response(int(status))
            self.send_header("Content-Type", "application/json")
            if after:
                self.send_header("Retry-After", after)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            entry["answered"] = int(status)
            LOG.write(json.dumps(entry) + "\n")
            return
        conn = http.client.HTTPConnection("127.0.0.1", UPSTREAM, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() in KEEP}
        conn.request("POST", self.path, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() in RELAY:
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        entry["answered"] = r.status
        entry["upstream"] = {k.lower(): v for k, v in r.getheaders() if k.lower() in RELAY}
        LOG.write(json.dumps(entry) + "\n")

    def log_message(self, *args):
        pass


srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print("READY", srv.server_address[1], flush=True)
srv.serve_forever()
