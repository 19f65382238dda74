"""The model_api role's systemd unit and environment file, rendered by Ansible on the controller.

Amazon Linux 2023 (production) cannot be booted on the testbed: this is where its path is
checked. Both OS families' units are scored with `systemd-analyze security --offline` (the
same scoring the Molecule verify runs on a live Debian host).
"""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ANALYZE = shutil.which("systemd-analyze")
FAMILIES = ("Debian", "RedHat")


@pytest.fixture(scope="module")
def rendered(render_templates) -> dict[str, dict[str, Path]]:
    variants = [
        {
            "role": "model_api",
            "os_family": family,
            "templates": {"palpite.service.j2": "", "palpite.env.j2": ""},
        }
        for family in FAMILIES
    ]
    variants.append(
        {
            "role": "model_api",
            "os_family": "Debian",
            "overrides": {
                "model_api_service_name": "palpite-b",
                "model_api_base_dir": "/opt/pb",
                "model_api_workers": 3,
                "model_api_memory_max": "1G",
                "model_api_extra_environment": {"OMP_NUM_THREADS": "1"},
            },
            "templates": {"palpite.service.j2": "", "palpite.env.j2": ""},
        }
    )
    out = render_templates(variants)
    return {"Debian": out[0], "RedHat": out[1], "custom": out[2]}


def _unit(rendered, key: str) -> str:
    return rendered[key]["palpite.service.j2"].read_text()


def _settings(text: str) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for line in text.splitlines():
        if re.match(r"^[A-Z][A-Za-z]+=", line):
            k, _, v = line.partition("=")
            result.setdefault(k, []).append(v)
    return result


@pytest.mark.parametrize("family", FAMILIES)
def test_unit_is_a_notify_service_with_hup_reload(rendered, family):
    s = _settings(_unit(rendered, family))
    assert s["Type"] == ["notify"]
    kill = {"Debian": "/bin/kill", "RedHat": "/usr/bin/kill"}[family]
    assert s["ExecReload"] == [f"{kill} -s HUP $MAINPID"]
    assert s["Restart"] == ["on-failure"]
    assert s["KillMode"] == ["mixed"]
    assert s["User"] == ["palpite"]
    assert s["ExecStart"] == [
        "/srv/palpite/app/current/.venv/bin/gunicorn --config "
        "/srv/palpite/app/current/app/gunicorn.conf.py"
    ]
    assert s["EnvironmentFile"] == ["/etc/palpite/palpite.env"]
    assert s["WantedBy"] == ["multi-user.target"]


@pytest.mark.parametrize("family", FAMILIES)
def test_unit_hardening(rendered, family):
    s = _settings(_unit(rendered, family))
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "CapabilityBoundingSet": "",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
        "RuntimeDirectory": "palpite",
    }.items():
        assert s[key] == [value], key
    assert "@system-service" in s["SystemCallFilter"]
    # Nothing writable but the runtime directory: no ReadWritePaths at all.
    assert "ReadWritePaths" not in s


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")
@pytest.mark.parametrize("family", FAMILIES)
def test_exposure_score_is_at_most_3(rendered, family, tmp_path):
    unit = tmp_path / "palpite.service"
    unit.write_text(_unit(rendered, family))
    proc = subprocess.run(
        [ANALYZE, "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        check=False,
    )
    m = re.search(r"Overall exposure level for palpite\.service: ([0-9.]+)", proc.stdout)
    assert m, proc.stdout + proc.stderr
    score = float(m.group(1))
    print(f"{family}: systemd-analyze security exposure {score}")
    assert score <= 3.0


def test_environment_file(rendered):
    env = rendered["Debian"]["palpite.env.j2"].read_text()
    lines = dict(
        line.split("=", 1) for line in env.splitlines() if line and not line.startswith("#")
    )
    assert lines["PALPITE_BIND"] == "unix:/run/palpite/gunicorn.sock"
    assert lines["PALPITE_MODEL_DIR"] == "/srv/palpite/models/current"
    assert lines["PALPITE_METRICS_DIR"] == "/run/palpite/metrics"
    assert lines["PALPITE_BATCH_LIMIT"] == "10000"
    assert lines["PALPITE_MAX_BODY_BYTES"] == "8388608"
    assert "PALPITE_WORKERS" not in lines  # 0: gunicorn.conf.py picks the CPU count
    assert env == rendered["RedHat"]["palpite.env.j2"].read_text()


def test_names_and_paths_follow_the_variables(rendered):
    s = _settings(_unit(rendered, "custom"))
    assert s["RuntimeDirectory"] == ["palpite-b"]
    assert s["MemoryMax"] == ["1G"]
    assert s["EnvironmentFile"] == ["/etc/palpite-b/palpite-b.env"]
    assert s["WorkingDirectory"] == ["/opt/pb/app/current"]
    env = rendered["custom"]["palpite.env.j2"].read_text()
    assert "PALPITE_BIND=unix:/run/palpite-b/gunicorn.sock\n" in env
    assert "PALPITE_MODEL_DIR=/opt/pb/models/current\n" in env
    assert "PALPITE_WORKERS=3\n" in env
    assert "OMP_NUM_THREADS=1\n" in env
