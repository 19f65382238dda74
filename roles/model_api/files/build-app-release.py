"""Build the app release tarball from a working tree, reproducibly.

  build-app-release.py SOURCE_DIR OUT_DIR PATH...   (PATH: files or directories in SOURCE_DIR)

The tarball holds PATH... as they are in the working tree (uncommitted changes included;
__pycache__ and *.pyc left out), with sorted names, zero times, root owners and normalised
modes, so the same tree always gives the same bytes. The release version is the project's
version plus the first 10 hex digits of the tarball's sha256: same tree, same version.
Writes OUT_DIR/palpite-app-<version>.tar.gz and prints one JSON line:
  {"version": ..., "file": ..., "sha256": ..., "members": N}
"""

import gzip
import hashlib
import io
import json
import sys
import tarfile
import tomllib
from pathlib import Path

SKIP_DIRS = {"__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache"}
SKIP_SUFFIXES = {".pyc", ".pyo"}


def members(source: Path, paths: list[str]) -> list[Path]:
    found: set[Path] = set()
    for rel in paths:
        path = source / rel
        if not path.exists():
            sys.exit(f"build-app-release: {path} does not exist")
        if path.is_file():
            found.add(path)
            continue
        for p in path.rglob("*"):
            parts = set(p.relative_to(source).parts)
            if parts & SKIP_DIRS or p.suffix in SKIP_SUFFIXES or not p.is_file():
                continue
            found.add(p)
    return sorted(found, key=lambda p: p.relative_to(source).as_posix())


def build(source: Path, out_dir: Path, paths: list[str]) -> dict[str, object]:
    project = tomllib.loads((source / "pyproject.toml").read_text())
    base_version = project.get("project", {}).get("version") or project["tool"]["poetry"]["version"]
    files = members(source, paths)
    raw = io.BytesIO()
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        dirs: set[str] = set()
        for path in files:
            rel = path.relative_to(source).as_posix()
            parents = rel.split("/")[:-1]
            for i in range(1, len(parents) + 1):
                d = "/".join(parents[:i])
                if d not in dirs:
                    dirs.add(d)
                    info = tarfile.TarInfo(d)
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
            info = tarfile.TarInfo(rel)
            info.size = path.stat().st_size
            info.mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
            with path.open("rb") as fh:
                tar.addfile(info, fh)
    data = raw.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    version = f"{base_version}-{digest[:10]}"
    out_dir.mkdir(parents=True, exist_ok=True)
    dest = out_dir / f"palpite-app-{version}.tar.gz"
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(dest)
    return {"version": version, "file": str(dest), "sha256": digest, "members": len(files)}


def main() -> int:
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    source, out_dir, paths = Path(sys.argv[1]).resolve(), Path(sys.argv[2]), sys.argv[3:]
    print(json.dumps(build(source, out_dir, paths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
