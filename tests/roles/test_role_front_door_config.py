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


@pytest.fixture(scope="module")
def rendered(render_templates, tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("front_door")
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
                },
                "templates": {"nginx.conf.j2": "nginx.conf", "upstream.conf.j2": "upstream"},
            }
        ]
    )
    shutil.copy(out["upstream.conf.j2"], upstream)
    return {"conf": out["nginx.conf.j2"], "upstream": upstream}


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
