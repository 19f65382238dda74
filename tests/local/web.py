"""A trivial upstream for the front door test, run on the app hosts until the app exists.

GET /         answers the host's name
GET /hold     answers the host's name once /release is called (at most 240 s later)
GET /holding  how many /hold requests are waiting
GET /release  lets every waiting /hold request answer
"""

import http.server
import socket
import threading

_lock = threading.Lock()
_release = threading.Event()
_holding = 0


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        global _holding, _release
        body = socket.gethostname()
        if self.path == "/hold":
            with _lock:
                _holding += 1
                event = _release
            event.wait(240)
            with _lock:
                _holding -= 1
        elif self.path == "/holding":
            body = str(_holding)
        elif self.path == "/release":
            with _lock:
                _release.set()
                _release = threading.Event()
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


http.server.ThreadingHTTPServer(("", 80), Handler).serve_forever()
