"""The front door's sync command (roles/front_door/tasks/sync.yml), run as written with bash
against stand-ins for nginx and systemctl: it reloads when the list changed, says
"unchanged" otherwise, and a run killed between writing the list and reloading nginx is
finished by the next one (it once saw the list already on disk and never reloaded)."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import jinja2
import pytest
import yaml

SYNC = Path(__file__).resolve().parents[2] / "roles" / "front_door" / "tasks" / "sync.yml"
LIST_A = "upstream palpite_app { server 10.0.0.3:80; server 10.0.0.4:80; }\n"
LIST_B = "upstream palpite_app { server 10.0.0.4:80; }\n"


def _script(upstream_file: Path, pid_file: Path) -> str:
    tasks = yaml.safe_load(SYNC.read_text())
    (task,) = [t for t in tasks if "ansible.builtin.shell" in t]
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    env.filters["quote"] = lambda v: shlex.quote(str(v))
    return env.from_string(task["ansible.builtin.shell"]["cmd"]).render(
        front_door_upstream_file=str(upstream_file),
        front_door_pid_file=str(pid_file),
        front_door_drain_timeout=1,
    )


class FrontDoor:
    """A directory standing for the front door: the list, nginx's pid file (a live process
    when "running"), and stand-ins on PATH that log each reload."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.list = root / "upstream.conf"
        self.pid_file = root / "nginx.pid"
        self.reloads = root / "reloads.log"
        self.kill_at_reload = root / "kill-at-reload"
        bin_dir = root / "bin"
        bin_dir.mkdir()
        stubs = {
            "nginx": "exit 0",
            "chown": "exit 0",
            # A run killed at the reload: the controller's SSH session dies with its shell.
            # Else a reload as nginx makes it: the old workers exit, the master starts new.
            "systemctl": (
                f'[ -e {self.kill_at_reload} ] && {{ kill -9 "$PPID"; exit 1; }}\n'
                f'echo "$*" >> {self.reloads}\n'
                f'pkill -P "$(cat {self.pid_file})" sleep'
            ),
        }
        for name, body in stubs.items():
            stub = bin_dir / name
            stub.write_text(f"#!/bin/bash\n{body}\n")
            stub.chmod(0o755)
        self.path = f"{bin_dir}:/usr/bin:/bin"
        self.master: subprocess.Popen[bytes] | None = None

    def start_nginx(self) -> None:
        # A master with one worker, which it replaces when it exits (pgrep -P finds it).
        self.master = subprocess.Popen(["bash", "-c", "while :; do sleep 300 & wait; done"])
        self.pid_file.write_text(f"{self.master.pid}\n")

    def stop(self) -> None:
        if self.master:
            workers = subprocess.run(
                ["pgrep", "-P", str(self.master.pid)], capture_output=True, text=True
            ).stdout.split()
            self.master.kill()
            self.master.wait()
            subprocess.run(["kill", *workers], check=False, capture_output=True)

    def sync(self, content: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", _script(self.list, self.pid_file)],
            input=content,
            capture_output=True,
            text=True,
            env={"PATH": self.path},
            timeout=30,
        )

    def reload_count(self) -> int:
        return len(self.reloads.read_text().splitlines()) if self.reloads.exists() else 0


@pytest.fixture
def front_door(tmp_path: Path) -> Iterator[FrontDoor]:
    door = FrontDoor(tmp_path)
    yield door
    door.stop()


def test_a_changed_list_is_reloaded_once_and_then_unchanged(front_door: FrontDoor) -> None:
    front_door.start_nginx()
    first = front_door.sync(LIST_A)
    assert (first.returncode, first.stdout.strip()) == (0, "drained"), first.stderr
    assert front_door.list.read_text() == LIST_A
    assert front_door.reload_count() == 1
    again = front_door.sync(LIST_A)
    assert (again.returncode, again.stdout.strip()) == (0, "unchanged")
    assert front_door.reload_count() == 1


def test_a_run_killed_before_the_reload_is_finished_by_the_next(front_door: FrontDoor) -> None:
    front_door.start_nginx()
    assert front_door.sync(LIST_A).returncode == 0
    front_door.kill_at_reload.touch()
    killed = front_door.sync(LIST_B)
    assert killed.returncode != 0
    assert front_door.list.read_text() == LIST_B  # on disk, but nginx never reloaded
    assert front_door.reload_count() == 1
    front_door.kill_at_reload.unlink()
    after = front_door.sync(LIST_B)
    assert (after.returncode, after.stdout.strip()) == (0, "drained"), after.stdout
    assert front_door.reload_count() == 2


def test_a_list_written_while_nginx_is_down_is_the_one_it_starts_with(
    front_door: FrontDoor,
) -> None:
    written = front_door.sync(LIST_A)
    assert (written.returncode, written.stdout.strip()) == (0, "written"), written.stderr
    front_door.start_nginx()
    again = front_door.sync(LIST_A)
    assert (again.returncode, again.stdout.strip()) == (0, "unchanged")
    assert front_door.reload_count() == 0
