"""Every role that installs OS packages on a host refreshes apt's package lists first.

A host booted from a fresh image has empty lists (the testbed's rootfs on a new machine, a
new AMI's cache): an install without a refresh fails with "No package matching ... is
available". A role must not rely on another role having refreshed them before it (`make
demo` on a new machine failed that way when the artifact role's install ran first).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
INSTALL_MODULES = {"ansible.builtin.package", "ansible.builtin.apt"}


def _tasks(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tasks of a task file in order, blocks flattened."""
    flat: list[dict[str, Any]] = []
    for item in items or []:
        for key in ("block", "rescue", "always"):
            if key in item:
                flat.extend(_tasks(item[key]))
        if not any(key in item for key in ("block", "rescue", "always")):
            flat.append(item)
    return flat


def _refreshes(task: dict[str, Any]) -> bool:
    args = task.get("ansible.builtin.apt")
    return isinstance(args, dict) and bool(args.get("update_cache")) and "cache_valid_time" in args


def _installs(task: dict[str, Any]) -> bool:
    for module in INSTALL_MODULES:
        args = task.get(module)
        if isinstance(args, dict) and args.get("name"):
            return args.get("state", "present") == "present"
    return False


def _task_files() -> list[Path]:
    files = sorted((REPO / "roles").glob("*/tasks/*.yml"))
    return [f for f in files if any(_installs(t) for t in _tasks(yaml.safe_load(f.read_text())))]


def test_the_scan_finds_the_roles_that_install_packages() -> None:
    roles = {f.parts[-3] for f in _task_files()}
    assert {"artifact", "model_api", "nginx", "poetry", "pyenv", "front_door"} <= roles, roles


@pytest.mark.parametrize("task_file", _task_files(), ids=lambda f: str(f.relative_to(REPO)))
def test_each_install_comes_after_a_refresh_of_the_package_lists(task_file: Path) -> None:
    refreshed = False
    for task in _tasks(yaml.safe_load(task_file.read_text())):
        refreshed = refreshed or _refreshes(task)
        if _installs(task):
            # Debian installs refresh (in the same task or before it); dnf refreshes itself.
            assert refreshed or "ansible.builtin.dnf" in task, (
                f"{task.get('name')}: refresh apt's lists first (update_cache, cache_valid_time)"
            )
