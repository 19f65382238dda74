"""model_api tasks/model_activate.yml, the rollout's switch step, run as written on the
controller against a directory standing for /srv/palpite: it refuses a version that
tasks/model.yml did not check in the same play (models/current untouched), and makes a
checked one live, keeping the model it replaces as models/previous."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from tests.roles.conftest import BIN, REPO, _ansible_env

OLD, NEW = "20260101T000000Z-0000aaaa", "20260102T000000Z-0000bbbb"


def _activate(base: Path, *, checked: str | None) -> subprocess.CompletedProcess[str]:
    tasks: list[dict] = []
    if checked is not None:
        # what tasks/model.yml's checks leave behind when they pass
        tasks.append({"ansible.builtin.set_fact": {"model_api_model_checked_version": checked}})
    tasks.append(
        {
            "ansible.builtin.include_role": {"name": "model_api", "tasks_from": "model_activate"},
            "vars": {"model_api_model_version": NEW, "model_api_base_dir": str(base)},
        }
    )
    play = base.parent / "play.yml"
    play.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]))
    return subprocess.run(
        [
            str(BIN / "ansible-playbook"),
            "-i",
            "localhost,",
            "-c",
            "local",
            str(play),
            "-e",
            f"ansible_python_interpreter={sys.executable}",
        ],
        cwd=REPO,
        env=_ansible_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _host(tmp_path: Path) -> Path:
    base = tmp_path / "srv"
    for version in (OLD, NEW):
        (base / "models" / "releases" / version).mkdir(parents=True)
    (base / "models" / "current").symlink_to(base / "models" / "releases" / OLD)
    return base


def test_an_unchecked_model_is_refused_and_current_stays(tmp_path: Path) -> None:
    for checked in (None, OLD):  # never checked in this play, or another version was
        base = _host(tmp_path / str(checked))
        run = _activate(base, checked=checked)
        assert run.returncode != 0
        assert f"model {NEW} was not checked by tasks/model.yml in this play" in run.stdout
        assert (base / "models" / "current").readlink().name == OLD
        assert not (base / "models" / "previous").exists()


def test_a_checked_model_goes_live_and_the_old_one_stays_as_previous(tmp_path: Path) -> None:
    base = _host(tmp_path)
    run = _activate(base, checked=NEW)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert (base / "models" / "current").readlink().name == NEW
    assert (base / "models" / "previous").readlink().name == OLD
