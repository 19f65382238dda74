"""The poetry role's RedHat (Amazon Linux 2023) path, which the testbed cannot boot.

vars/RedHat.yml against vars/Debian.yml, and the `poetry` wrapper rendered for RedHat and
run against a stand-in for Poetry's virtual environment: the OS CA bundle is used unless the
caller set REQUESTS_CA_BUNDLE, arguments and the exit status pass through.
"""

import os
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
ROLE = REPO / "roles" / "poetry"


def _vars(name: str) -> dict:
    return yaml.safe_load((ROLE / "vars" / f"{name}.yml").read_text())


def test_os_vars() -> None:
    debian, redhat = _vars("Debian"), _vars("RedHat")
    assert set(debian) == set(redhat) == {"poetry_os_ca_bundle", "poetry_os_packages"}
    assert redhat["poetry_os_ca_bundle"] == "/etc/pki/tls/certs/ca-bundle.crt"
    assert debian["poetry_os_ca_bundle"] == "/etc/ssl/certs/ca-certificates.crt"


def _fake_poetry(home: Path) -> None:
    bin_dir = home / "venv/bin"
    bin_dir.mkdir(parents=True)
    fake = bin_dir / "poetry"
    fake.write_text('#!/bin/sh\necho "bundle=${REQUESTS_CA_BUNDLE:-}"\necho "args=$*"\nexit 7\n')
    fake.chmod(0o755)


def _run(wrapper: Path, env: dict[str, str]) -> tuple[int, list[str]]:
    proc = subprocess.run(
        ["sh", str(wrapper), "install", "--no-root", "a b"],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.returncode, proc.stdout.splitlines()


def test_redhat_wrapper(render_templates, tmp_path: Path) -> None:
    home = tmp_path / "opt/poetry"
    _fake_poetry(home)
    bundle = tmp_path / "ca-bundle.crt"
    bundle.write_text("")
    plain, fake_bundle, no_ca = render_templates(
        [
            {"role": "poetry", "os_family": "RedHat", "templates": ["poetry.sh.j2"]},
            {
                "role": "poetry",
                "os_family": "RedHat",
                "templates": ["poetry.sh.j2"],
                "overrides": {"poetry_home": str(home), "poetry_os_ca_bundle": str(bundle)},
            },
            {
                "role": "poetry",
                "os_family": "RedHat",
                "templates": ["poetry.sh.j2"],
                "overrides": {"poetry_home": str(home), "poetry_use_system_ca": False},
            },
        ]
    )
    text = plain["poetry.sh.j2"].read_text()
    assert "/etc/pki/tls/certs/ca-bundle.crt" in text
    assert "exec /opt/poetry/venv/bin/poetry" in text

    wrapper = fake_bundle["poetry.sh.j2"]
    rc, out = _run(wrapper, {})
    assert rc == 7
    assert out == [f"bundle={bundle}", "args=install --no-root a b"]
    rc, out = _run(wrapper, {"REQUESTS_CA_BUNDLE": "/mine.pem"})
    assert out[0] == "bundle=/mine.pem"

    rc, out = _run(no_ca["poetry.sh.j2"], {})
    assert (rc, out[0]) == (7, "bundle=")
    assert os.access(home / "venv/bin/poetry", os.X_OK)
