"""One mechanism, used everywhere: no two Ansible task or playbook files share a run of
more than 20 lines (whitespace and comments aside). A longer run is a flow written twice,
which drifts: make it one task file and include it."""

import difflib
import itertools
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MAX_SHARED_LINES = 20


def _task_files() -> list[Path]:
    patterns = ("site.yml", "playbooks/**/*.yml", "roles/*/tasks/*.yml", "roles/*/handlers/*.yml")
    return sorted({p for pattern in patterns for p in REPO.glob(pattern)})


def _lines(path: Path) -> list[str]:
    stripped = (line.strip() for line in path.read_text().splitlines())
    return [line for line in stripped if line and not line.startswith("#")]


def test_no_two_task_files_share_a_long_run_of_lines() -> None:
    files = {path: _lines(path) for path in _task_files()}
    assert len(files) > 20  # the globs found the playbooks and the roles' tasks
    repeated = []
    for (a, lines_a), (b, lines_b) in itertools.combinations(files.items(), 2):
        matcher = difflib.SequenceMatcher(None, lines_a, lines_b, autojunk=False)
        longest = max(block.size for block in matcher.get_matching_blocks())
        if longest > MAX_SHARED_LINES:
            repeated.append(f"{a.relative_to(REPO)} ~ {b.relative_to(REPO)}: {longest} lines")
    assert repeated == []
