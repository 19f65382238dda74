"""`python -m ml COMMAND` (also the `palpite-ml` script).

Results go to stdout, progress to stderr. An error the user can fix prints one line,
`error: …`, and exits with status 1; never a traceback.
"""

import argparse
import datetime as dt
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from ml.cli_artifact import add_artifact_parsers
from ml.cli_bundle import add_bundle_parsers, signing_key_arg
from ml.errors import PalpiteError
from ml.gate import DEFAULT_MIN_GAIN

# The pipeline's modules (pandas, scikit-learn) are imported by the commands that need
# them, so `fetch` on a host starts quickly.


class _Parser(argparse.ArgumentParser):
    """Usage mistakes, too, are one line (argparse would print the whole usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {message} (see --help)\n")


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {text!r}") from None


def run_generate(args: argparse.Namespace) -> int:
    from ml.generate import write_league

    rows = write_league(args.out, args.first_season, args.last_season, args.seed)
    print(
        f"wrote {rows} matches, seasons {args.first_season}-{args.last_season}, seed {args.seed}",
        file=sys.stderr,
    )
    print(args.out)
    return 0


def run_process(args: argparse.Namespace) -> int:
    from ml.process import process
    from ml.progress import step

    with step(f"processing {args.data}"):
        table = process(args.data, args.out)
    seasons = table["season"]
    print(
        f"{len(table)} matches, {seasons.nunique()} seasons ({seasons.min()}-{seasons.max()}),"
        f" {len(table.columns)} columns",
        file=sys.stderr,
    )
    print(args.out)
    return 0


def _print_report(result: Any) -> None:
    from ml.data import CLASSES

    print(f"test from {result.test_from}")
    header = ("log loss", 9), ("RPS", 7), ("accuracy", 9), ("ECE", 7), ("train", 6), ("test", 6)
    print(" " * 12 + "".join(f" {title:>{width}}" for title, width in header))
    for name, m in result.metrics.items():
        print(
            f"{name:<12} {m['log_loss']:>9.4f} {m['rps']:>7.4f} {m['accuracy']:>9.3f}"
            f" {m['ece']:>7.4f} {m['n_train']:>6} {m['n_test']:>6}"
        )
    print("\nmodel calibration (test matches): predicted vs observed, per probability bin")
    for cls in CLASSES:
        cells = [
            f"{b['predicted']:.2f}/{b['observed']:.2f} (n={b['n']})"
            for b in result.calibration["bins"][cls]
            if b["n"] >= 20
        ]
        print(f"  {cls:<9} " + "  ".join(cells))


def run_evaluate(args: argparse.Namespace) -> int:
    from ml.data import load_matches
    from ml.evaluate import backtest, default_test_from
    from ml.features import build_features
    from ml.progress import step

    with step(f"reading {args.data}"):
        matches = load_matches(args.data)
    with step(f"features for {len(matches)} matches"):
        features = build_features(matches)
    test_from = args.test_from or default_test_from(matches)
    with step(f"backtest from {test_from}"):
        result = backtest(matches, test_from, features)
    if args.json:
        print(json.dumps(result.metrics))
    else:
        _print_report(result)
    return 0


def run_train(args: argparse.Namespace) -> int:
    from ml.train import train

    signer = None
    if args.signing_key:  # Loaded first: a bad key fails before minutes of training.
        from ml.signing import load_signer

        signer = load_signer(args.signing_key)
    trained = train(args.data, args.out, args.test_from, args.min_improvement, args.name)
    print(f"bundle {trained.bundle_dir.name}", file=sys.stderr)
    if signer is not None:
        from ml.signing import sign_bundle

        sign_bundle(trained.bundle_dir, signer)
        print(f"signed with key {signer.public_key.key_id}", file=sys.stderr)
    print(trained.bundle_dir)
    return 0


def _add_pipeline_parsers(sub: Any) -> None:
    from_help = "first day of the test period (default: start of the third-to-last season)"

    p = sub.add_parser("generate", help="write a synthetic league CSV (the public file's format)")
    p.add_argument("--out", type=Path, required=True, help="CSV file to write")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--first-season", type=int, default=2003, help="(default: 2003)")
    p.add_argument("--last-season", type=int, default=2024, help="(default: 2024)")
    p.set_defaults(func=run_generate)

    p = sub.add_parser("process", help="validate and clean a results CSV; write features parquet")
    p.add_argument("--data", type=Path, required=True, help="results CSV")
    p.add_argument("--out", type=Path, required=True, help="parquet file to write")
    p.set_defaults(func=run_process)

    p = sub.add_parser("evaluate", help="temporal backtest: model vs base rates vs rating only")
    p.add_argument("--data", type=Path, required=True, help="results CSV (or process parquet)")
    p.add_argument("--test-from", type=_date, metavar="YYYY-MM-DD", help=from_help)
    p.add_argument("--json", action="store_true", help="print one JSON object to stdout")
    p.set_defaults(func=run_evaluate)

    p = sub.add_parser("train", help="backtest, gate, fit on all matches, write a model bundle")
    p.add_argument("--data", type=Path, required=True, help="results CSV (or process parquet)")
    p.add_argument("--out", type=Path, default=Path("artifacts/bundles"),
                   help="parent directory of the bundle (default: artifacts/bundles)")  # fmt: skip
    p.add_argument("--test-from", type=_date, metavar="YYYY-MM-DD", help=from_help)
    p.add_argument(
        "--min-improvement",
        type=float,
        default=DEFAULT_MIN_GAIN,
        metavar="NATS",
        help="log loss the model must beat the base rate by in the backtest (default: %(default)s)",
    )
    p.add_argument("--name", default="brasileirao-outcome", help="model name in the card")
    signing_key_arg(p)
    p.set_defaults(func=run_train)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m ml",
        description="palpite ML: synthetic data, backtests, training, model bundles.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_pipeline_parsers(sub)
    add_bundle_parsers(sub)
    add_artifact_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (PalpiteError, OSError) as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
