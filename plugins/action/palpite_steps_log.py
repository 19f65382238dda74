"""Write a host's release steps (a list of dicts) to a JSON-lines file on the controller.

The timeline release tests and benchmarks read (release_events_dir). `copy` on the
controller is two module runs, about half a second per host flow; this writes from the
worker Ansible forks for the task, with the repository's own atomic write
(`ml.fileio.atomic_output`; the project's venv runs Ansible and has the project
installed, as for palpite_fleet_cli): a reader never sees half a timeline.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset({"dest", "events"})

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        dest = Path(str(self._task.args["dest"]))
        text = "".join(json.dumps(event) + "\n" for event in self._task.args.get("events") or [])
        try:
            unchanged = dest.read_text(encoding="utf-8") == text
        except FileNotFoundError:
            unchanged = False
        result.update(dest=str(dest), changed=not unchanged)
        if unchanged or self._task.check_mode:
            return result
        from ml.fileio import atomic_output

        try:
            with atomic_output(dest) as partial:
                partial.write_text(text, encoding="utf-8")
                partial.chmod(0o644)
        except OSError as exc:
            return {**result, "failed": True, "msg": f"cannot write {dest}: {exc}"}
        return result
