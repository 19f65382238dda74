"""The nginx role's configuration, rendered by Ansible and served by a real nginx on loopback.

A small HTTP server on a unix socket stands in for gunicorn. Checked here, without any
testbed host: `nginx -t` on the Debian and the RedHat (Amazon Linux 2023) renderings, the
security headers, static caching, gzip, the per-client rate limit (429 with JSON), the
forwarded client address trusted only from the load balancer's network, /metrics behind an
allow-list (403 JSON), the body limit (413 JSON), JSON 502 when gunicorn is down, and that
nginx closes idle upstream connections before gunicorn's keep-alive would. The Open
Inference Protocol's /v2 infer paths get the same rate limit (a regex location) and body
limit as /predict. Access lines are held in a buffer and still written within its flush
time.
"""

import gzip
import http.client
import json
import shutil
import socket
import socketserver
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from tests.local_server import free_port

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
pytestmark = pytest.mark.skipif(not Path(NGINX).exists(), reason="nginx is not installed")

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)


# ----------------------------------------------------------------------------- fake gunicorn


class _Upstream(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str):
        self.connections_opened = 0
        self.connections_closed = 0
        self.lock = threading.Lock()
        super().__init__(path, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Upstream

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.connections_opened += 1

    def finish(self) -> None:
        super().finish()
        with self.server.lock:
            self.server.connections_closed += 1

    def address_string(self) -> str:
        return "unix"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, ctype: str, extra: dict[str, str] | None = None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Model-Version", "v-test")
        # The app's own CSP must not reach the client: nginx is the one source.
        self.send_header("Content-Security-Policy", "default-src *")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _headers_json(self) -> bytes:
        return json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()

    def do_GET(self) -> None:
        if self.path == "/":
            self._send(200, b"<!doctype html><title>palpite</title>", "text/html; charset=utf-8")
        elif self.path == "/metrics":
            self._send(200, b"palpite_requests_total 1\n", "text/plain; version=0.0.4")
        elif self.path == "/big":
            body = json.dumps({"predictions": [{"label": "draw"}] * 2000}).encode()
            self._send(200, body, "application/json")
        elif self.path == "/slow":  # a request that stays in flight for a while
            time.sleep(1.0)
            self._send(200, b"{}", "application/json")
        elif self.path == "/app-error":
            self._send(503, b'{"detail":"no model loaded"}', "application/json")
        else:
            self._send(200, self._headers_json(), "application/json")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        self.rfile.read(length)
        self._send(200, self._headers_json(), "application/json")


# ----------------------------------------------------------------------------- nginx


class Nginx:
    def __init__(self, conf: Path, port: int, workdir: Path):
        self.conf, self.port, self.workdir = conf, port, workdir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [NGINX, "-c", str(self.conf), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"nginx exited: {self.proc.stderr.read().decode()}")  # type: ignore[union-attr]
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("nginx did not start listening")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            conn.close()


def _local_overrides(tmp: Path, port: int, **extra: Any) -> dict[str, Any]:
    """Paths a non-root-owned, throwaway nginx can use; plus the variant's settings."""
    static = tmp / "static"
    static.mkdir(parents=True, exist_ok=True)
    (static / "app.css").write_text("body { color: #123; }\n" * 200)
    return {
        "nginx_os_user": "root",
        "nginx_listen": [f"127.0.0.1:{port}"],
        "nginx_pid_file": str(tmp / "nginx.pid"),
        "nginx_error_log": str(tmp / "error.log"),
        "nginx_access_log": str(tmp / "access.log"),
        "nginx_upstream_socket": str(tmp / "gunicorn.sock"),
        "nginx_static_locations": [{"url": "/static/", "root": str(static)}],
        **extra,
    }


@pytest.fixture(scope="module")
def configs(render_templates, tmp_path_factory) -> dict[str, dict[str, Any]]:
    specs: dict[str, dict[str, Any]] = {}
    # Direct clients, strict settings: 127.0.0.1 is NOT on the /metrics allow-list.
    tmp = tmp_path_factory.mktemp("direct")
    port = free_port()
    specs["direct"] = {
        "tmp": tmp,
        "port": port,
        "os_family": "Debian",
        "overrides": _local_overrides(
            tmp,
            port,
            nginx_metrics_allow=["10.255.255.7"],
            nginx_predict_rate="1r/s",
            nginx_predict_burst=2,
            nginx_client_max_body_size="1k",
            nginx_upstream_keepalive_timeout=1,
            nginx_static_max_age=600,
            # one worker, one upstream keepalive pool: connection counts are exact
            nginx_worker_processes=1,
            nginx_client_header_timeout=2,
            nginx_client_connection_limit=3,
        ),
    }
    # Behind a load balancer on 127.0.0.0/8: X-Forwarded-For is the client.
    tmp = tmp_path_factory.mktemp("lb")
    port = free_port()
    specs["lb"] = {
        "tmp": tmp,
        "port": port,
        "os_family": "Debian",
        "overrides": _local_overrides(
            tmp,
            port,
            nginx_real_ip_from=["127.0.0.0/8"],
            nginx_predict_rate="1r/s",
            nginx_predict_burst=2,
            # Without the page's catch-all limit, only the prediction locations limit:
            # the /v2 test below then shows the regex location is what does it.
            nginx_predict_rate_limit_page_form=False,
            nginx_access_log_buffer="",  # every access line written as its request ends
        ),
    }
    # The production path (Amazon Linux 2023), as rendered with no override at all...
    specs["redhat_verbatim"] = {"os_family": "RedHat", "overrides": {}}
    specs["debian_verbatim"] = {"os_family": "Debian", "overrides": {}}
    # ... and with only paths made local, for `nginx -t` here.
    tmp = tmp_path_factory.mktemp("redhat")
    specs["redhat"] = {
        "tmp": tmp,
        "port": free_port(),
        "os_family": "RedHat",
        "overrides": _local_overrides(tmp, free_port()),
    }
    names = list(specs)
    rendered = render_templates(
        [
            {
                "role": "nginx",
                "os_family": specs[n]["os_family"],
                "overrides": specs[n]["overrides"],
                "templates": {"nginx.conf.j2": "nginx.conf"},
            }
            for n in names
        ]
    )
    for n, out in zip(names, rendered, strict=True):
        specs[n]["conf"] = out["nginx.conf.j2"]
    return specs


def _nginx_t(conf: Path, prefix: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [NGINX, "-t", "-c", str(conf)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_redhat_rendering_uses_amazon_linux_user_and_module_path(configs):
    text = configs["redhat_verbatim"]["conf"].read_text()
    assert "\nuser nginx;\n" in text
    assert "include /usr/share/nginx/modules/*.conf;" in text
    assert "include /etc/nginx/mime.types;" in text
    debian = configs["debian_verbatim"]["conf"].read_text()
    assert "\nuser www-data;\n" in debian
    assert "include /etc/nginx/modules-enabled/*.conf;" in debian


def test_redhat_rendering_passes_nginx_t(configs):
    spec = configs["redhat"]
    result = _nginx_t(spec["conf"], spec["tmp"])
    assert result.returncode == 0, result.stderr


def test_debian_defaults_pass_nginx_t(configs, tmp_path):
    # As installed on a host, unmodified (www-data exists on Debian controllers too).
    result = _nginx_t(configs["debian_verbatim"]["conf"], tmp_path)
    assert result.returncode == 0, result.stderr


def test_a_broken_config_fails_nginx_t(configs, tmp_path):
    # The check the template's `validate:` and the reload handler rely on does catch errors.
    broken = tmp_path / "nginx.conf"
    broken.write_text(
        configs["debian_verbatim"]["conf"]
        .read_text()
        .replace("server_tokens off;", "server_tokens offf;")
    )
    assert _nginx_t(broken, tmp_path).returncode != 0


@pytest.fixture(scope="module")
def upstream(configs) -> Iterator[dict[str, _Upstream]]:
    servers = {}
    for name in ("direct", "lb"):
        path = str(configs[name]["overrides"]["nginx_upstream_socket"])
        srv = _Upstream(path)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers[name] = srv
    yield servers
    for srv in servers.values():
        srv.shutdown()
        srv.server_close()


@pytest.fixture(scope="module")
def direct(configs, upstream) -> Iterator[Nginx]:
    spec = configs["direct"]
    n = Nginx(spec["conf"], spec["port"], spec["tmp"])
    n.start()
    yield n
    n.stop()


@pytest.fixture(scope="module")
def lb(configs, upstream) -> Iterator[Nginx]:
    spec = configs["lb"]
    n = Nginx(spec["conf"], spec["port"], spec["tmp"])
    n.start()
    yield n
    n.stop()


def _assert_security_headers(headers: dict[str, str]) -> None:
    assert headers["content-security-policy"] == CSP
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert headers["x-frame-options"] == "DENY"
    assert headers["server"] == "nginx"  # server_tokens off: no version


def test_page_is_proxied_with_security_headers(direct):
    status, headers, body = direct.request("GET", "/")
    assert status == 200
    assert b"palpite" in body
    _assert_security_headers(headers)
    assert headers["x-model-version"] == "v-test"


def test_request_id_and_client_address_reach_the_app(direct):
    status, _, body = direct.request("GET", "/echo", headers={"X-Request-ID": "abc-123"})
    seen = json.loads(body)
    assert status == 200
    assert seen["x-request-id"] == "abc-123"
    assert seen["x-real-ip"] == "127.0.0.1"
    assert "connection" not in seen  # not "close": the upstream connection is kept alive
    _, _, body = direct.request("GET", "/echo")
    assert len(json.loads(body)["x-request-id"]) == 32  # nginx's own $request_id


def _access_line(workdir: Path, request_id: str, within: float) -> dict[str, Any] | None:
    """The access log's line for `request_id`, once it has been written (polled)."""
    deadline = time.monotonic() + within
    while True:
        log = workdir / "access.log"
        for line in log.read_text().splitlines() if log.exists() else []:
            record = json.loads(line)
            if record["request_id"] == request_id:
                return record
        if time.monotonic() > deadline:
            return None
        time.sleep(0.05)


def test_access_lines_are_held_and_written_within_the_flush_time(configs, direct, lb):
    assert "palpite_json buffer=64k flush=1s;" in configs["direct"]["conf"].read_text()
    assert "palpite_json;" in configs["lb"]["conf"].read_text()  # buffer "": none
    for nginx, request_id in ((direct, "held-1"), (lb, "unheld-1")):
        status, _, _ = nginx.request("GET", "/echo", headers={"X-Request-ID": request_id})
        assert status == 200
        # Held lines still arrive: a buffer without its flush time would keep one line
        # until 64k of others came.
        record = _access_line(nginx.workdir, request_id, within=5)
        assert record is not None, f"no access line for {request_id}"
        assert (record["method"], record["uri"], record["status"]) == ("GET", "/echo", 200)


def test_app_errors_pass_through_unchanged(direct):
    status, headers, body = direct.request("GET", "/app-error")
    assert status == 503
    assert json.loads(body) == {"detail": "no model loaded"}
    _assert_security_headers(headers)


def test_static_assets_have_cache_headers_and_gzip(direct):
    status, headers, body = direct.request(
        "GET", "/static/app.css", headers={"Accept-Encoding": "gzip"}
    )
    assert status == 200
    assert headers["cache-control"] == "public, max-age=600"
    assert headers["content-encoding"] == "gzip"
    assert gzip.decompress(body).startswith(b"body { color: #123; }")
    _assert_security_headers(headers)
    status, headers, body = direct.request("GET", "/static/missing.css")
    assert status == 404
    assert json.loads(body)["status"] == 404
    _assert_security_headers(headers)


def test_json_responses_are_gzipped(direct):
    status, headers, body = direct.request("GET", "/big", headers={"Accept-Encoding": "gzip"})
    assert status == 200
    assert headers["content-encoding"] == "gzip"
    assert len(json.loads(gzip.decompress(body))["predictions"]) == 2000


def test_metrics_refused_outside_the_allow_list(direct, lb):
    status, headers, body = direct.request("GET", "/metrics")
    assert status == 403
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {"detail": "forbidden", "status": 403}
    _assert_security_headers(headers)
    # ... and served to an allowed source (127.0.0.1 is on lb's default allow-list).
    status, _, body = lb.request("GET", "/metrics")
    assert status == 200
    assert b"palpite_requests_total" in body


def test_metrics_allow_list_sees_the_forwarded_client(lb):
    # Behind the balancer, a forwarded outside client is not 127.0.0.1 any more.
    status, _, _ = lb.request("GET", "/metrics", headers={"X-Forwarded-For": "198.51.100.9"})
    assert status == 403


def test_body_over_the_limit_is_a_json_413(direct):
    status, headers, body = direct.request(
        "POST", "/predict", body=b"x" * 4096, headers={"Content-Type": "application/json"}
    )
    assert status == 413
    assert json.loads(body)["status"] == 413
    _assert_security_headers(headers)


def _burst(n: Nginx, count: int, headers: dict[str, str] | None = None) -> list[int]:
    return [
        n.request(
            "POST",
            "/predict",
            body=b"{}",
            headers={"Content-Type": "application/json", **(headers or {})},
        )[0]
        for _ in range(count)
    ]


def test_predict_is_rate_limited_per_client_with_429(direct):
    time.sleep(3)  # refill the bucket left by earlier tests
    statuses = _burst(direct, 8)
    # rate 1r/s, burst 2, nodelay: the first 3 pass at once, the rest are refused.
    assert statuses[:3] == [200, 200, 200]
    assert 429 in statuses[3:]
    assert statuses.count(200) <= 4
    status, headers, body = direct.request("POST", "/predict", body=b"{}")
    assert status == 429
    assert json.loads(body)["status"] == 429
    _assert_security_headers(headers)
    # GETs are not limited, not even of the page ...
    assert [direct.request("GET", "/")[0] for _ in range(5)] == [200] * 5
    # ... but the page's form POSTs (predictions) share the client's budget.
    status, _, body = direct.request("POST", "/", body=b"a=1")
    assert status == 429


V2_INFER = ("/v2/models/clf/infer", "/v2/models/clf/versions/20261205T000000Z-0a1b2c3d/infer")


def test_v2_infer_paths_share_the_predict_rate_limit(lb):
    client = {"X-Forwarded-For": "203.0.113.150", "Content-Type": "application/json"}
    for i, path in enumerate(V2_INFER):
        client["X-Forwarded-For"] = f"203.0.113.{150 + i}"
        statuses = [lb.request("POST", path, b"{}", client)[0] for _ in range(8)]
        assert statuses[:3] == [200, 200, 200] and 429 in statuses[3:], (path, statuses)
        # The same client's /predict budget is the one it just spent.
        assert lb.request("POST", "/predict", b"{}", client)[0] == 429
    # GETs of the /v2 metadata and health paths, and other POSTs, are not limited.
    client["X-Forwarded-For"] = "203.0.113.160"
    paths = ["/v2", "/v2/health/ready", "/v2/models/clf", "/v2/models/clf/ready"]
    assert [lb.request("GET", p, headers=client)[0] for p in paths * 3] == [200] * 12
    assert [lb.request("POST", "/", b"a=1", client)[0] for _ in range(6)] == [200] * 6
    assert lb.request("POST", "/v2/models/clf/infer/x", b"{}", client)[0] == 200


def test_v2_infer_body_over_the_limit_is_a_json_413(direct):
    for path in V2_INFER:
        status, _, body = direct.request("POST", path, b"x" * 4096, {"Content-Type": "a/b"})
        assert status == 413 and json.loads(body)["status"] == 413


def test_forwarded_for_is_ignored_from_untrusted_peers(direct):
    time.sleep(3)
    # No set_real_ip_from: every X-Forwarded-For value still counts as one client.
    statuses = [
        direct.request(
            "POST", "/predict", body=b"{}", headers={"X-Forwarded-For": f"203.0.113.{i}"}
        )[0]
        for i in range(8)
    ]
    assert 429 in statuses


def test_clients_behind_the_balancer_are_limited_separately(lb):
    time.sleep(3)
    # Eight clients, one request each: none is limited, though all come from one peer.
    statuses = [
        lb.request("POST", "/predict", body=b"{}", headers={"X-Forwarded-For": f"203.0.113.{i}"})[0]
        for i in range(8)
    ]
    assert statuses == [200] * 8
    # One client hammering is limited.
    statuses = _burst(lb, 8, {"X-Forwarded-For": "203.0.113.200"})
    assert 429 in statuses
    # And the app sees the forwarded client as X-Real-IP.
    _, _, body = lb.request("GET", "/echo", headers={"X-Forwarded-For": "203.0.113.77"})
    assert json.loads(body)["x-real-ip"] == "203.0.113.77"


def test_hsts_only_for_responses_the_client_got_over_https(direct, lb):
    https = {"X-Forwarded-Proto": "https"}
    # Behind the trusted balancer: its X-Forwarded-Proto says how the client connected.
    assert lb.request("GET", "/", headers=https)[1]["strict-transport-security"] == (
        "max-age=31536000; includeSubDomains"
    )
    assert "strict-transport-security" not in lb.request("GET", "/")[1]
    # A direct client cannot claim HTTPS over a plain connection.
    assert "strict-transport-security" not in direct.request("GET", "/", headers=https)[1]


def test_a_slow_header_client_is_cut_off_while_others_are_served(direct):
    # slowloris: the request line, then one header line every 0.5 s, never the blank line.
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", direct.port), timeout=10) as slow:
        slow.sendall(b"GET / HTTP/1.1\r\nHost: palpite\r\n")
        closed_after = None
        for i in range(16):  # at most 8 s; the header timeout is 2 s here
            time.sleep(0.5)
            assert direct.request("GET", "/echo")[0] == 200  # others are served meanwhile
            try:
                slow.sendall(f"X-Trickle-{i}: a\r\n".encode())
                slow.settimeout(0.01)
                if slow.recv(1024) == b"":
                    closed_after = time.monotonic() - t0
                    break
            except TimeoutError:
                continue
            except OSError:
                closed_after = time.monotonic() - t0
                break
    assert closed_after is not None, "the slow client was never cut off"
    assert 1.5 <= closed_after <= 4.0


def test_requests_in_flight_per_client_are_limited_with_429(direct):
    statuses: list[int] = []
    lock = threading.Lock()

    def call() -> None:
        status = direct.request("GET", "/slow")[0]
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=call) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=15)
    # Three at once are allowed here (nginx_client_connection_limit); the rest get 429.
    assert sorted(statuses) == [200, 200, 200, 429, 429]
    assert direct.request("GET", "/slow")[0] == 200  # and a client that waits is served


def test_upstream_connections_are_reused_then_closed_before_gunicorn_would(direct, upstream):
    srv = upstream["direct"]
    time.sleep(1.5)  # nginx_upstream_keepalive_timeout is 1 s here: idle ones are gone
    opened = srv.connections_opened
    closed_before = srv.connections_closed
    assert opened == closed_before, "idle upstream connections outlived the keepalive_timeout"
    for _ in range(5):
        assert direct.request("GET", "/echo")[0] == 200
    # five requests, one after another: one upstream connection, kept open ...
    assert srv.connections_opened == opened + 1
    assert srv.connections_closed == closed_before
    # ... and closed by nginx after its keepalive_timeout (1 s here; gunicorn's is longer).
    time.sleep(1.6)
    assert srv.connections_closed == closed_before + 1


def test_gunicorn_down_is_a_json_502(configs, direct, upstream):
    srv = upstream["direct"]
    sock = Path(configs["direct"]["overrides"]["nginx_upstream_socket"])
    srv.shutdown()
    srv.server_close()
    sock.unlink(missing_ok=True)
    time.sleep(1.5)  # the kept-alive upstream connection is closed by nginx's idle timeout
    status, headers, body = direct.request("GET", "/health/ready")
    assert status == 502
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["status"] == 502
    _assert_security_headers(headers)
