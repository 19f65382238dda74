"""The poetry role installs Poetry with pip --require-hashes: its requirements file pins the
role's poetry_version and every package Poetry needs, each with its sha256 hashes."""

import re
from pathlib import Path

import yaml

ROLE = Path(__file__).resolve().parents[2] / "roles" / "poetry"


def _requirements() -> dict[str, list[str]]:
    text = (ROLE / "files" / "poetry-requirements.txt").read_text()
    found: dict[str, list[str]] = {}
    # One requirement per logical line (backslash continuations joined), comments dropped.
    for line in re.sub(r"\\\n", " ", text).splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            pin, *options = line.split()
            found[pin] = options
    return found


def test_every_requirement_is_pinned_with_sha256_hashes() -> None:
    requirements = _requirements()
    assert len(requirements) > 20  # Poetry's whole closure, not just Poetry
    for pin, options in requirements.items():
        assert re.fullmatch(r"[a-z0-9._-]+==[0-9][0-9A-Za-z.+!-]*", pin), pin
        assert options and all(re.fullmatch(r"--hash=sha256:[0-9a-f]{64}", o) for o in options), pin


def test_it_pins_the_roles_poetry_version() -> None:
    version = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())["poetry_version"]
    assert f"poetry=={version}" in _requirements()
    tasks = (ROLE / "tasks" / "main.yml").read_text()
    assert "'--require-hashes', '-r'" in tasks
