"""Render the roles' templates on the controller (no testbed host needed).

`render_templates(variants)` runs tests/roles/render.yml once for a list of variants and
returns, per variant, a dict of template name -> rendered path.
"""

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
ROLES = REPO / "roles"
BIN = Path(sys.executable).parent

Variant = dict[str, Any]


def _ansible_env() -> dict[str, str]:
    env = dict(os.environ)
    env["ANSIBLE_CONFIG"] = str(REPO / "ansible.cfg")
    env["ANSIBLE_LOCALHOST_WARNING"] = "false"
    env["ANSIBLE_INVENTORY_UNPARSED_WARNING"] = "false"
    env["ANSIBLE_NOCOLOR"] = "1"
    return env


@pytest.fixture(scope="session")
def render_templates(
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[[list[Variant]], list[dict[str, Path]]]:
    def render(variants: list[Variant]) -> list[dict[str, Path]]:
        work = tmp_path_factory.mktemp("render")
        spec = []
        outputs = []
        for i, v in enumerate(variants):
            out = {name: work / f"{i}-{Path(name).stem}" for name in v["templates"]}
            entry = {
                "role": v["role"],
                "os_family": v["os_family"],
                "templates": {name: str(path) for name, path in out.items()},
            }
            if v.get("overrides"):
                overrides = work / f"{i}-overrides.json"
                overrides.write_text(json.dumps(v["overrides"]))
                entry["overrides"] = str(overrides)
            spec.append(entry)
            outputs.append(out)
        spec_file = work / "variants.json"
        spec_file.write_text(json.dumps({"render_variants": spec}))
        proc = subprocess.run(
            [
                str(BIN / "ansible-playbook"),
                "-i",
                "localhost,",
                str(REPO / "tests/roles/render.yml"),
                "-e",
                f"@{spec_file}",
                "-e",
                f"ansible_python_interpreter={sys.executable}",
            ],
            env=_ansible_env(),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
        return outputs

    return render
