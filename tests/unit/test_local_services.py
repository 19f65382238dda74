"""The local environment's controller-side services: each environment its own."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def local_var(name: str, moto_port: str, tmp_path: Path) -> str:
    """`name` as the local inventory's group_vars give it for an environment on moto_port
    (a plain localhost beside them: no local cloud is asked)."""
    tmp_path.mkdir()
    (tmp_path / "group_vars").symlink_to(REPO / "inventory" / "local" / "group_vars")
    (tmp_path / "hosts").write_text("localhost ansible_connection=local\n")
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
               PALPITE_LOCAL_MOTO_PORT=moto_port)  # fmt: skip
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ansible"), "localhost", "-i", str(tmp_path / "hosts"),
         "-m", "ansible.builtin.debug", "-a", f"var={name}", "-o"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return str(json.loads(result.stdout.split("=>", 1)[1])[name])


def test_each_local_environment_has_its_own_git_mirror(tmp_path: Path) -> None:
    # A second environment's teardown stopped the first one's mirror when they shared a port.
    ports = {
        moto: local_var("local_pyenv_git_port", moto, tmp_path / moto) for moto in ("4566", "4578")
    }
    assert ports == {"4566": "9400", "4578": "9412"}
