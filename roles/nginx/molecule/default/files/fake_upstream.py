"""A stand-in for gunicorn on a unix socket, for the nginx role's Molecule scenario.

Answers every request with JSON describing what it received (method, path, headers), so the
verify step can see what nginx forwards. /metrics answers Prometheus text, /health/ready a
version. Debian's python3, standard library only.
"""

import json
import os
import socketserver
import sys
from http.server import BaseHTTPRequestHandler
from pathlib import Path


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def address_string(self):
        return "unix"

    def log_message(self, format, *args):
        pass

    def _send(self, status, body, ctype):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Model-Version", "fake-1")
        self.end_headers()
        self.wfile.write(body)

    def _echo(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if self.path == "/metrics":
            return self._send(200, b"palpite_requests_total 1\n", "text/plain; version=0.0.4")
        seen = {
            "method": self.command,
            "path": self.path,
            "body_bytes": len(body),
            "headers": {k.lower(): v for k, v in self.headers.items()},
            # padding so responses are big enough to be gzipped
            "padding": "x" * 2048,
        }
        return self._send(200, json.dumps(seen).encode(), "application/json")

    do_GET = do_POST = _echo  # noqa: N815 (http.server's handler names)


class Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True


def main():
    path = sys.argv[1]
    Path(path).unlink(missing_ok=True)
    os.umask(0o007)
    with Server(path, Handler) as srv:
        srv.serve_forever()


if __name__ == "__main__":
    main()
