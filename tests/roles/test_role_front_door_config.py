"""The front door's nginx configuration, rendered by Ansible and checked by a real nginx.

The front door plays the load balancer locally; like the app hosts' nginx it cuts off slow
clients and limits the requests each client has in flight (roles/front_door defaults).
"""

import shutil
import subprocess
from pathlib import Path

import pytest

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
pytestmark = pytest.mark.skipif(not Path(NGINX).exists(), reason="nginx is not installed")


def _render(render_templates, tmp: Path, **overrides: str) -> Path:
    """nginx.conf rendered from the role's defaults, its upstream file beside it."""
    upstream = tmp / "upstream.conf"
    [out] = render_templates(
        [
            {
                "role": "front_door",
                "os_family": "Debian",
                "overrides": {
                    "front_door_upstream_file": str(upstream),
                    "front_door_pid_file": str(tmp / "nginx.pid"),
                    "front_door_upstreams": ["127.0.0.1"],
                    "front_door_tg_name": "palpite-test-app",
                    **overrides,
                },
                "templates": {"nginx.conf.j2": "nginx.conf", "upstream.conf.j2": "upstream"},
            }
        ]
    )
    shutil.copy(out["upstream.conf.j2"], upstream)
    return out["nginx.conf.j2"]


@pytest.fixture(scope="module")
def rendered(render_templates, tmp_path_factory) -> dict[str, Path]:
    return {"conf": _render(render_templates, tmp_path_factory.mktemp("front_door"))}


def test_rendering_passes_nginx_t(rendered):
    result = subprocess.run(
        [NGINX, "-t", "-c", str(rendered["conf"])], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_slow_clients_are_cut_off_and_requests_in_flight_limited(rendered):
    text = rendered["conf"].read_text()
    for directive in (
        "client_header_timeout 10s;",
        "client_body_timeout 10s;",
        "send_timeout 10s;",
    ):
        assert directive in text
    assert "limit_conn front_door_conn 256;" in text
    assert "limit_conn_status 429;" in text


@pytest.fixture(scope="module")
def rendered_tls(render_templates, tmp_path_factory) -> Path:
    """With a certificate: HTTPS on 443, HTTP on 80 only redirecting (nginx -t loads the
    certificate and key, so they are real ones from openssl)."""
    tmp = tmp_path_factory.mktemp("front_door_tls")
    key, cert = str(tmp / "front_door.key"), str(tmp / "front_door.crt")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=10.231.0.2",
            "-keyout",
            key,
            "-out",
            cert,
        ],
        check=True,
        capture_output=True,
    )
    return _render(
        render_templates,
        tmp,
        front_door_tls_certificate="front_door.crt",
        front_door_tls_key="front_door.key",
        front_door_tls_dir=str(tmp),
    )


def test_https_rendering_passes_nginx_t_with_the_intermediate_profile(rendered_tls):
    result = subprocess.run(
        [NGINX, "-t", "-c", str(rendered_tls)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    text = rendered_tls.read_text()
    assert "listen 443 ssl default_server;" in text
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in text
    assert "return 301 https://$host$request_uri;" in text
    # Only the HTTPS server proxies; plain HTTP has the health and the redirect.
    assert text.count("proxy_pass http://palpite_app;") == 1
