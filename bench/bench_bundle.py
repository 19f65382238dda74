"""Bundle load time: how long a worker spends verifying and loading a model.

    .venv/bin/python bench/bench_bundle.py [--repeat N] [--bundle DIR ...]

Builds two bundles in a temporary directory (a 4-feature LogisticRegression, as made by
`package`, and a 200-tree random forest as a deliberately large pickle), plus any bundle
given with --bundle, then measures:
  - warm: `load_bundle` in a process that has imported everything already (median of N),
    split into card, checksums, host checks and unpickling;
  - cold: a fresh interpreter that imports ml.bundle and loads the bundle, as a new
    gunicorn worker does after a SIGHUP when nothing was preloaded (median of 3), split
    into importing ml.bundle and load_bundle (which imports scikit-learn while
    unpickling). Bytecode is cached under a temporary PYTHONPYCACHEPREFIX (warmed by one
    uncounted run), as on an installed host: with PYTHONDONTWRITEBYTECODE and no
    __pycache__, every start compiles scipy and scikit-learn from source.
Prints a Markdown table.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from ml import bundle as b

COLD_SCRIPT = (
    "import sys, time; t0 = time.perf_counter(); from ml.bundle import load_bundle; "
    "t1 = time.perf_counter(); load_bundle(sys.argv[1]); t2 = time.perf_counter(); "
    "print(t1 - t0, t2 - t1)"
)


def _fields(n_features: int, classes: list[str]) -> dict[str, Any]:
    names = [f"x{i}" for i in range(n_features)]
    return {
        "name": "bench",
        "adapter": {"kind": "vector", "feature_code_version": None},
        "input_schema": {
            "kind": "vector",
            "name": "features",
            "length": n_features,
            "feature_names": names,
        },
        "feature_names": names,
        "classes": classes,
        "class_labels": {c: c for c in classes},
    }


def build_bundles(root: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5000, 20))
    y = np.select([x[:, 0] > 0.5, x[:, 0] < -0.5], ["high", "low"], "mid")
    classes = sorted(set(y))
    small = LogisticRegression(max_iter=500).fit(x[:, :4], y)
    large = RandomForestClassifier(n_estimators=200, random_state=0, n_jobs=1).fit(x, y)
    return {
        "package: LogisticRegression, 4 features": b.write_bundle(
            root / "small", small, _fields(4, classes)
        ),
        "RandomForest, 200 trees, 20 features": b.write_bundle(
            root / "large", large, _fields(20, classes)
        ),
    }


def _median_ms(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def measure(path: Path, repeat: int, pycache: Path) -> dict[str, float]:
    card = b.read_card(path)
    b.load_bundle(path)  # warm the page cache and imports
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    m = {
        "size_mb": size / 1e6,
        "card": _median_ms(lambda: b.read_card(path), repeat),
        "checksums": _median_ms(lambda: b.check_files(path, card), repeat),
        "host": _median_ms(lambda: b.check_host(card), repeat),
        "unpickle": _median_ms(lambda: joblib.load(path / b.MODEL_FILE), repeat),
        "load": _median_ms(lambda: b.load_bundle(path), repeat),
    }
    _cold_seconds(path, pycache)  # fills the bytecode cache
    cold = [_cold_seconds(path, pycache) for _ in range(3)]
    m["cold_import"] = statistics.median(c[0] for c in cold)
    m["cold_load"] = statistics.median(c[1] for c in cold)
    return m


def _cold_seconds(path: Path, pycache: Path) -> tuple[float, float]:
    root = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    out = subprocess.run(
        [sys.executable, "-c", COLD_SCRIPT, str(path)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    imported, loaded = out.stdout.split()
    return float(imported), float(loaded)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--bundle", type=Path, action="append", default=[])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bundles = build_bundles(Path(tmp))
        bundles.update({f"given: {p.name}": p for p in args.bundle})
        print(
            "| bundle | size MB | card ms | checksums ms | host checks ms | unpickle ms"
            " | load_bundle warm ms | cold: import ml.bundle s | cold: load_bundle s |"
        )
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for name, path in bundles.items():
            m = measure(path, args.repeat, Path(tmp) / "pycache")
            print(
                f"| {name} | {m['size_mb']:.2f} | {m['card']:.2f} | {m['checksums']:.2f}"
                f" | {m['host']:.2f} | {m['unpickle']:.1f} | {m['load']:.1f}"
                f" | {m['cold_import']:.2f} | {m['cold_load']:.2f} |"
            )


if __name__ == "__main__":
    main()
