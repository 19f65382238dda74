"""Run a playbook that changes the fleet so that an interrupted run gives the fleet back.

Ansible runs no `rescue:` or `always:` on SIGINT, so a Ctrl-C would leave the fleet lock
held. The make targets (release, rollback, release-app, patch) run the playbook under this
wrapper: it hands the playbook a run id (PALPITE_RUN_ID) and a state file
(PALPITE_RUN_STATE) that `ml.fleet_cli acquire` fills once the run holds the fleet; when the
playbook ends without success (Ctrl-C, an error), it runs playbooks/fleet.yml to give that
run's lock back and keeps the journal, which the next run reconciles from. A SIGINT or
SIGTERM sent to the wrapper alone is passed on to the playbook. After kill -9 of both the
lock stays: `make release-status`, then `make release-unlock`.

    python -m ml.fleet_run playbooks/release.yml [ansible-playbook arguments]
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from ml.fleet_lock import new_run_id

FLEET_PLAYBOOK = "playbooks/fleet.yml"
# Options that select hosts or tasks: fleet.yml must run whole, on the controller.
_SELECTING = {"--tags", "-t", "--skip-tags", "--limit", "-l", "--start-at-task"}


def _ansible_playbook() -> str:
    beside = Path(sys.executable).parent / "ansible-playbook"
    return str(beside) if beside.exists() else "ansible-playbook"


def fleet_arguments(arguments: Sequence[str]) -> list[str]:
    """The run's arguments fleet.yml can take (inventory, extra vars): not the selecting ones."""
    kept: list[str] = []
    skip = False
    for arg in arguments:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in _SELECTING:
            skip = "=" not in arg
            continue
        kept.append(arg)
    return kept


def run(playbook: str, arguments: Sequence[str]) -> int:
    run_id = new_run_id()
    with tempfile.TemporaryDirectory(prefix="palpite-run-") as tmp:
        state = Path(tmp) / "held.json"
        env = os.environ | {"PALPITE_RUN_ID": run_id, "PALPITE_RUN_STATE": str(state)}
        child = subprocess.Popen([_ansible_playbook(), playbook, *arguments], env=env)
        signalled: list[float] = []

        def note(signum: int, _frame: FrameType | None) -> None:
            signalled.append(time.monotonic())

        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, note)
        forwarded = False
        while True:
            try:
                code = child.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                # A terminal's Ctrl-C reaches the playbook itself; a signal sent to this
                # process alone is passed on when the playbook is still running a second later.
                if signalled and not forwarded and time.monotonic() - signalled[0] > 1:
                    child.send_signal(signal.SIGINT)
                    forwarded = True
        if code != 0 and state.exists():
            print(
                f"fleet_run: run {run_id} stopped (exit {code}): giving its fleet lock back;"
                " the journal stays for the next run (make release-status)",
                file=sys.stderr,
            )
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            subprocess.run(
                [
                    _ansible_playbook(),
                    FLEET_PLAYBOOK,
                    *fleet_arguments(arguments),
                    "-e",
                    "fleet_command=release",
                    "-e",
                    f"fleet_run_id={run_id}",
                ],
                env=os.environ,
                stdout=subprocess.DEVNULL,
                check=False,
            )
    return 130 if signalled and code != 0 else code


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0].startswith("-"):
        print(
            "usage: python -m ml.fleet_run PLAYBOOK [ansible-playbook arguments]", file=sys.stderr
        )
        return 2
    return run(args[0], args[1:])


if __name__ == "__main__":
    sys.exit(main())
