"""A local environment of a test's own (tests/local, tests/slow): the environment for
ansible-playbook that selects it, and what a run's PLAY RECAP says it changed."""

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def local_env(
    environment: str,
    moto_port: int,
    front_door_index: int,
    app_indices: list[int],
) -> dict[str, str]:
    """This process's environment without AWS_ and PALPITE_ settings, with the environment's
    name, moto port and testbed addresses (inventory/local/group_vars/all/palpite.yml)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PALPITE_"))}
    env.update(
        PALPITE_ENVIRONMENT=environment,
        PALPITE_LOCAL_MOTO_PORT=str(moto_port),
        PALPITE_LOCAL_FRONT_DOOR_INDEX=str(front_door_index),
        PALPITE_LOCAL_APP_INDICES=",".join(map(str, app_indices)),
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        NO_PROXY="10.231.0.0/24,127.0.0.1,localhost",
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_DEPRECATION_WARNINGS="false",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
    )
    if "PALPITE_CACHE_DIR" in os.environ:
        env["PALPITE_CACHE_DIR"] = os.environ["PALPITE_CACHE_DIR"]
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def changed_per_host(proc: subprocess.CompletedProcess) -> dict[str, int]:
    """changed= per host from the PLAY RECAP."""
    out = {}
    for line in proc.stdout.split("PLAY RECAP", 1)[-1].splitlines():
        parts = line.split()
        if len(parts) > 2 and parts[1] == ":":
            fields = dict(p.split("=", 1) for p in parts[2:] if "=" in p)
            out[parts[0]] = int(fields["changed"])
    return out
