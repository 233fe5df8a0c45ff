#!/usr/bin/env python3
"""A loopback OTLP/HTTP logs receiver for errsnap's forwarding tests
(tests/forward.rs): it decodes each request with the official protobuf
definitions (PyPI `opentelemetry-proto`) and writes one JSON line per log
record. A record whose body contains `[reject]` is answered with a
`partial_success` that rejects it, as a collector does.

    otlp_receiver.py OUT_FILE [PORT]   prints `READY <port>` (PORT 0: any)
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest, ExportLogsServiceResponse)

OUT = open(sys.argv[1], "a", buffering=1)


def value(v):
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, kind) if kind else None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, status, body, ctype="application/x-protobuf"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path != "/v1/logs" or self.headers.get("Content-Type") != "application/x-protobuf":
            return self.answer(400, b"want POST /v1/logs as application/x-protobuf", "text/plain")
        req = ExportLogsServiceRequest()
        try:
            req.ParseFromString(body)
        except Exception as e:  # a request the official decoder refuses
            return self.answer(400, ("undecodable: %s" % e).encode(), "text/plain")
        rejected = 0
        for rl in req.resource_logs:
            resource = {kv.key: value(kv.value) for kv in rl.resource.attributes}
            for sl in rl.scope_logs:
                for lr in sl.log_records:
                    d = MessageToDict(lr, preserving_proto_field_name=True)
                    d["attrs"] = {kv.key: value(kv.value) for kv in lr.attributes}
                    d["body_text"] = value(lr.body)
                    d["severity"] = lr.severity_number
                    d["time_ns"] = lr.time_unix_nano
                    d["trace_id_hex"] = lr.trace_id.hex()
                    d["span_id_hex"] = lr.span_id.hex()
                    d["resource"] = resource
                    d["scope"] = {"name": sl.scope.name, "version": sl.scope.version}
                    d["headers"] = {k.lower(): v for k, v in self.headers.items()
                                    if k.lower().startswith("x-")}
                    if "[reject]" in (d["body_text"] or ""):
                        rejected += 1
                        d["rejected"] = True
                    OUT.write(json.dumps(d) + "\n")
        resp = ExportLogsServiceResponse()
        if rejected:
            resp.partial_success.rejected_log_records = rejected
            resp.partial_success.error_message = "records marked [reject] are refused"
        self.answer(200, resp.SerializeToString())

    def log_message(self, *args):
        pass


PORT = int(sys.argv[2]) if len(sys.argv) > 2 else 0
srv = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
print("READY", srv.server_address[1], flush=True)
srv.serve_forever()
