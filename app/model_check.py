"""palpite-model-check: unpack, verify and smoke-test a model bundle with the app's own code.

A console script of the package (pyproject.toml), run from an app release's venv by the
model_api role:
  palpite-model-check unpack ARCHIVE RELEASES_DIR VERSION  # checksums, no unpickling
      (ARCHIVE `-`: read from stdin, which the role opens as root for an unprivileged unpack)
  palpite-model-check verify BUNDLE_DIR [--expect-version V]   # checksums, no unpickling
  palpite-model-check smoke BUNDLE_DIR [--expect-version V]    # load + sample prediction
(`python -m app.model_check ...` is the same command.)

`smoke` loads the bundle exactly as a gunicorn worker does (app.model_state) and runs the
example instance of the bundle's own input schema through the serving pipeline
(app.predict.Predictor: parse, validate, predict, encode). It prints one JSON line and
exits 0, or prints the reason on stderr and exits 1. It unpickles the model: the role runs
it under the service unit's sandbox (systemd-run with the unit's protections).
"""

import argparse
import json
import logging
import math
import sys
import warnings
from pathlib import Path


def _fail(message: str) -> int:
    print(f"palpite-model-check: {message}", file=sys.stderr)
    return 1


def cmd_unpack(args: argparse.Namespace) -> int:
    from ml.bundle import unpack_archive

    archive = sys.stdin.buffer if args.archive == "-" else Path(args.archive)
    path = unpack_archive(archive, Path(args.releases), expected_version=args.version)
    print(json.dumps({"version": args.version, "path": str(path)}))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from ml.bundle import verified_card

    path = Path(args.bundle).resolve()
    card = verified_card(path)
    if args.expect_version and card["version"] != args.expect_version:
        return _fail(f"{path} holds version {card['version']}, expected {args.expect_version}")
    print(json.dumps({"version": card["version"], "path": str(path)}))
    return 0


def cmd_smoke(args: argparse.Namespace) -> int:
    from app.errors import ApiError
    from app.model_state import load_model_state
    from app.predict import Predictor

    path = Path(args.bundle).resolve()
    # The loader logs why it could not load; the one line below says it (stderr is the
    # role's refusal message).
    logging.disable(logging.ERROR)
    state = load_model_state(path)
    logging.disable(logging.NOTSET)
    if not state.ready:
        return _fail(f"the app cannot load {path}: {state.reason}")
    if args.expect_version and state.version != args.expect_version:
        return _fail(f"{path} holds version {state.version}, expected {args.expect_version}")
    example = state.schema.example
    predictor = Predictor(state.model, state.schema, batch_limit=1)
    body = json.dumps(example).encode()
    try:
        with warnings.catch_warnings():
            # numpy's overflow/invalid-value notes: the refusal below says what matters.
            warnings.simplefilter("ignore", RuntimeWarning)
            result = json.loads(predictor.run(body).body)
    except ApiError as exc:
        return _fail(
            f"the sample instance {body.decode()} gets a {exc.status} ({exc.code}) from the"
            f" serving pipeline: {exc.message}"
        )
    predictions = result.get("predictions") or []
    if result.get("model_version") != state.version or len(predictions) != 1:
        return _fail(f"unexpected answer to the sample instance: {result}")
    probabilities = predictions[0]["probabilities"]
    total = sum(probabilities.values())
    if not all(math.isfinite(p) and 0.0 <= p <= 1.0 for p in probabilities.values()):
        return _fail(f"probabilities out of range: {probabilities}")
    if abs(total - 1.0) > 1e-6:
        return _fail(f"probabilities sum to {total}, not 1: {probabilities}")
    if predictions[0]["label"] not in probabilities:
        return _fail(f"label {predictions[0]['label']!r} is not a class: {probabilities}")
    print(
        json.dumps(
            {
                "version": state.version,
                "load_seconds": round(state.load_seconds, 3),
                "example": example,
                "prediction": predictions[0],
            }
        )
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="palpite-model-check")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("unpack")
    p.add_argument("archive")
    p.add_argument("releases")
    p.add_argument("version")
    p.set_defaults(func=cmd_unpack)
    for name, func in (("verify", cmd_verify), ("smoke", cmd_smoke)):
        p = sub.add_parser(name)
        p.add_argument("bundle")
        p.add_argument("--expect-version", default="")
        p.set_defaults(func=func)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except Exception as exc:  # one clear line for the Ansible task's failure message
        return _fail(f"{type(exc).__name__}: {exc}")


if __name__ == "__main__":
    sys.exit(main())
