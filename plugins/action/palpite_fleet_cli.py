"""Run `python -m ml.fleet_cli ARGV` inside the controller's Ansible worker process.

The fleet lock and journal are written many times per rolling change (take, begin, each
host's way out of rotation and back, finish). As a command each call started Python and
imported boto3 again, about half a second on the project's machine; here it is a function
call in the worker Ansible forks for the task, which inherits the modules the controller
has loaded already. Same arguments, same rc/stdout/stderr as the command, so the tasks
that read them are unchanged; the command stays what `make release-status` and a user run.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from typing import Any

from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset({"argv", "environment", "repo_dir"})

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        argv = [str(arg) for arg in self._task.args.get("argv") or []]
        # The worker is a fork of its own for this task: its environment ends with it.
        environment = self._task.args.get("environment") or {}
        os.environ.update({str(k): str(v) for k, v in environment.items()})
        repo_dir = str(self._task.args.get("repo_dir") or "")
        if repo_dir and repo_dir not in sys.path:
            sys.path.insert(0, repo_dir)
        from ml import fleet_cli  # the repository's package, as `python -m` finds it

        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = fleet_cli.main(argv)
            except SystemExit as exc:  # argparse's usage errors
                rc = exc.code if isinstance(exc.code, int) else 2
            except Exception as exc:  # what the command would have died of, in one line
                print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
                rc = 1
        result.update(
            cmd=["python", "-m", "ml.fleet_cli", *argv],
            rc=rc,
            stdout=out.getvalue().rstrip("\n"),
            stderr=err.getvalue().rstrip("\n"),
            changed=False,
        )
        result["stdout_lines"] = result["stdout"].splitlines()
        result["stderr_lines"] = result["stderr"].splitlines()
        if rc != 0:
            result["failed"] = True
            result["msg"] = "non-zero return code"
        return result
