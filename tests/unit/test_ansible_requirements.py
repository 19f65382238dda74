"""requirements.yml lists the collection versions that the pinned ansible package bundles."""

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _installed_collections() -> dict[str, str]:
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    out = subprocess.run(
        [str(BIN / "ansible-galaxy"), "collection", "list", "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    found: dict[str, str] = {}
    for collections in json.loads(out).values():
        for name, info in collections.items():
            found.setdefault(name, info["version"])
    return found


def test_requirements_match_the_bundled_collections() -> None:
    required = yaml.safe_load((REPO / "requirements.yml").read_text())["collections"]
    assert required, "requirements.yml lists no collections"
    installed = _installed_collections()
    for entry in required:
        assert entry["name"] in installed, f"{entry['name']} is not installed in the venv"
        assert str(entry["version"]) == installed[entry["name"]], (
            f"{entry['name']}: requirements.yml says {entry['version']}, "
            f"the ansible package bundles {installed[entry['name']]}"
        )


def test_every_collection_the_project_uses_is_required() -> None:
    """Each collection named in a role or playbook (namespace.collection.module) is listed."""
    required = {
        e["name"] for e in yaml.safe_load((REPO / "requirements.yml").read_text())["collections"]
    }
    installed = set(_installed_collections())
    used: set[str] = set()
    for top in ("roles", "playbooks", "tests/molecule"):
        for path in (REPO / top).rglob("*.yml"):
            text = path.read_text(errors="replace")
            for name in installed:
                if name != "ansible.builtin" and f"{name}." in text:
                    used.add(name)
    if (REPO / "site.yml").exists():
        text = (REPO / "site.yml").read_text()
        used |= {n for n in installed if n != "ansible.builtin" and f"{n}." in text}
    missing = used - required
    assert not missing, f"used but not in requirements.yml: {sorted(missing)}"
