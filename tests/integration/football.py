"""A small football bundle made by the real pipeline (`python -m ml generate` + `train`).

Built once and cached under .cache/test-bundles/, keyed by the pipeline's source and the
lock file, so a change to the feature code or a library rebuilds it.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".cache" / "test-bundles"


def _source_key() -> str:
    digest = hashlib.sha256()
    for path in sorted([*REPO.glob("ml/**/*.py"), REPO / "poetry.lock"]):
        digest.update(path.relative_to(REPO).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def football_bundle() -> Path:
    target = CACHE / f"football-{_source_key()}"
    if not target.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".football-", dir=CACHE))
        try:
            csv = work / "league.csv"
            env = {**os.environ, "PYTHONPATH": str(REPO)}
            run = [sys.executable, "-m", "ml"]
            # Six seasons keep training to seconds; the API does not care about accuracy.
            subprocess.run(
                [
                    *run,
                    "generate",
                    "--out",
                    str(csv),
                    "--first-season",
                    "2019",
                    "--last-season",
                    "2024",
                ],
                cwd=REPO,
                env=env,
                check=True,
                capture_output=True,
            )
            subprocess.run(
                [*run, "train", "--data", str(csv), "--out", str(work / "bundles")],
                cwd=REPO,
                env=env,
                check=True,
                capture_output=True,
            )
            work.rename(target)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
    [bundle] = (target / "bundles").iterdir()
    return bundle
