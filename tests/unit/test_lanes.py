"""`.ci/lanes.sh`, which runs `make test`'s lanes side by side: unless LANES_CPU_GROUPS=0, each
lane in a CPU group of its own (cgroup v1 `cpu`), the first one with the larger share; a
failing target fails the run. Run on a copy of the script with a throwaway Makefile and a
stub `testbed`, so the real testbed's bridge and holds are not touched."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CPU_CGROUPS = Path("/sys/fs/cgroup/cpu")

# Each target writes the CPU group it runs in and that group's share.
MAKEFILE = """\
define show
\t@group=$$(sed -n 's/^[0-9]*:cpu:\\(.*\\)/\\1/p' /proc/self/cgroup); \\
\t  echo "group $$group $$(cat /sys/fs/cgroup/cpu$$group/cpu.shares 2>/dev/null)"
endef
first: ; $(show)
second: ; $(show)
third: ; $(show)
broken: ; @echo "the reason it broke"; exit 3
"""


def copy_with_makefile(tmp_path: Path) -> Path:
    (tmp_path / ".ci").mkdir()
    for name in ("lanes.sh", "timed.sh"):
        shutil.copy2(REPO / ".ci" / name, tmp_path / ".ci" / name)
    stub = tmp_path / "tests" / "testbed" / "testbed"
    stub.parent.mkdir(parents=True)
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    (tmp_path / "Makefile").write_text(MAKEFILE)
    return tmp_path


def lanes(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(root / ".ci" / "lanes.sh"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        # the caller's own LANES_* settings (a `make test` run with LANES_CPU_GROUPS=0)
        # would change what each case asks for
        env={**{k: v for k, v in os.environ.items() if not k.startswith("LANES_")}, **env},
        check=False,
    )


def group_and_share(root: Path, target: str) -> tuple[str, str]:
    line = next(
        line
        for line in (root / ".cache" / "lanes" / f"{target}.log").read_text().splitlines()
        if line.startswith("group ")
    )
    _, group, share = line.split(" ", 2)
    return group, share


@pytest.mark.skipif(
    os.geteuid() != 0 or not os.access(CPU_CGROUPS / "cgroup.procs", os.W_OK),
    reason="needs root and cgroup v1's cpu controller (where make test gives lanes CPU groups)",
)
def test_each_lane_runs_in_a_cpu_group_of_its_own_the_first_with_the_larger_share(
    tmp_path: Path,
) -> None:
    root = copy_with_makefile(tmp_path)
    # off when asked: every lane in the caller's group
    own_group = next(
        line.split(":", 2)[2]
        for line in Path("/proc/self/cgroup").read_text().splitlines()
        if line.split(":")[1] == "cpu"
    )
    run = lanes(root, "first", "second", LANES_CPU_GROUPS="0")
    assert run.returncode == 0, run.stdout + run.stderr
    assert group_and_share(root, "first")[0] == group_and_share(root, "second")[0] == own_group

    # on by default
    run = lanes(root, "first", "second", "third")
    assert run.returncode == 0, run.stdout + run.stderr
    groups = {target: group_and_share(root, target) for target in ("first", "second", "third")}
    assert groups["first"][1] == "1024"
    assert groups["second"][1] == groups["third"][1] == "256"
    assert len({group for group, _ in groups.values()}) == 3
    run_groups = {Path(group).parent for group, _ in groups.values()}
    assert len(run_groups) == 1 and run_groups != {Path("/")}
    # removed once the lanes are done
    assert not (CPU_CGROUPS / next(iter(run_groups)).relative_to("/")).exists()

    run = lanes(root, "first", "second", LANES_OTHER_SHARES="1024")
    assert run.returncode == 0, run.stdout + run.stderr
    assert group_and_share(root, "second")[1] == "1024"


def test_a_failing_target_fails_the_run_and_shows_its_log(tmp_path: Path) -> None:
    root = copy_with_makefile(tmp_path)
    run = lanes(root, "first", "broken,second")
    assert run.returncode == 1
    assert "lanes: broken FAILED" in run.stdout
    assert "[broken] the reason it broke" in run.stdout
    # the rest of a failed lane does not run; the other lane does
    assert "lanes: second started" not in run.stdout
    assert "lanes: first passed" in run.stdout
