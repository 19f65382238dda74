"""The fleet lock and journal from the command line: what the release playbooks, `make
release-status` and `make release-unlock` run on the controller (ml/fleet_lock.py has the
rules). One line on stderr and a non-zero exit for every refusal; exit 3 when the fleet
is busy.

    python -m ml.fleet_cli status  --bucket B [--prefix P]
    python -m ml.fleet_cli acquire --bucket B --operation release --target V [--run-id ID]
    python -m ml.fleet_cli begin   --bucket B --run-id ID --target V --previous U --hosts a,b
    python -m ml.fleet_cli phase   --bucket B --run-id ID --host a --phase draining
    python -m ml.fleet_cli finish  --bucket B --run-id ID --outcome released
    python -m ml.fleet_cli release --bucket B --run-id ID
    python -m ml.fleet_cli unlock  --bucket B

`acquire` prints JSON: the run id and the journal an earlier run left unfinished (or null),
which the playbook reconciles before anything else. With PALPITE_RUN_STATE set (ml/fleet_run.py
sets it) it also writes the run id there, so the wrapper knows the run held the fleet.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ml import fleet_lock
from ml.errors import PalpiteError
from ml.fleet_lock import FleetBusyError, Lock
from ml.s3 import s3_client

EXIT_BUSY = 3


def status_text(lock: Lock | None, journal: dict[str, Any] | None) -> str:
    lines = [lock.describe() if lock else "the fleet is free"]
    if journal:
        state = "finished" if journal.get("finished") else "NOT finished"
        outcome = f" ({journal['outcome']})" if journal.get("outcome") else ""
        lines.append(
            f"journal of run {journal['run_id']}: {journal['operation']} {journal['previous']}"
            f" -> {journal['target']}, {state}{outcome}, updated {journal['updated']}"
        )
        lines += [f"  {h}: {p}" for h, p in sorted(journal["hosts"].items())]
        if journal.get("contract"):
            lines.append(f"input contract: {journal['contract']}")
    return "\n".join(lines)


def _acquire(s3: Any, args: argparse.Namespace) -> None:
    run_id = args.run_id or os.environ.get("PALPITE_RUN_ID", "")
    lock = fleet_lock.acquire(
        s3, args.bucket, args.operation, args.target, args.prefix, run_id=run_id
    )
    state = os.environ.get("PALPITE_RUN_STATE", "")
    if state:
        Path(state).write_text(json.dumps({"run_id": lock.run_id}))
    journal = fleet_lock.read_journal(s3, args.bucket, args.prefix)
    left = None
    if journal is not None and fleet_lock.unfinished(journal):
        # The reconcile (fleet_reconcile.yml) registers these again: the rule of which
        # phases are at rest stays here, in one place.
        left = {**journal, "out_of_rotation": fleet_lock.hosts_out_of_rotation(journal)}
    print(json.dumps({"run_id": lock.run_id, "unfinished": left}))


def _begin(s3: Any, args: argparse.Namespace) -> None:
    held = fleet_lock.read_lock(s3, args.bucket, args.prefix)
    if held is None or held[0].run_id != args.run_id:
        raise PalpiteError(f"run {args.run_id} does not hold the fleet: no journal written")
    hosts = {h: "pending" for h in args.hosts.split(",") if h}
    # A host an interrupted run left out that the reconcile could not bring back keeps its
    # phase: this run's journal must not forget it.
    earlier = fleet_lock.read_journal(s3, args.bucket, args.prefix)
    if fleet_lock.out_of_rotation(earlier):
        assert earlier is not None
        for host, phase in earlier["hosts"].items():
            if phase not in fleet_lock.AT_REST:
                hosts[host] = phase
    journal = fleet_lock.write_journal(
        s3, args.bucket, held[0], args.previous, hosts, args.prefix, target=args.target
    )
    if args.contract:  # what the new model changes for production's clients (ml.card_diff)
        fleet_lock.annotate(s3, args.bucket, args.run_id, {"contract": args.contract}, args.prefix)
        journal["contract"] = args.contract


def _unlock(s3: Any, args: argparse.Namespace) -> None:
    lock, journal = fleet_lock.unlock(s3, args.bucket, args.prefix)
    print(f"broke the lock: {lock.describe()}" if lock else "the fleet was not locked")
    left = fleet_lock.unfinished(journal)
    print("the journal left unfinished: " + "; ".join(left) if left else "nothing left unfinished")
    if left:
        print("the next release of the same version finishes it; `make rollback` undoes it")


def run(args: argparse.Namespace) -> None:
    s3 = s3_client(args.endpoint_url)
    if args.command == "acquire":
        _acquire(s3, args)
    elif args.command == "begin":
        _begin(s3, args)
    elif args.command == "phase":
        fleet_lock.set_phase(s3, args.bucket, args.run_id, args.host, args.phase, args.prefix)
    elif args.command in {"finish", "release"}:
        done = (
            fleet_lock.finish(s3, args.bucket, args.run_id, args.outcome, args.prefix)
            if args.command == "finish"
            else fleet_lock.release(s3, args.bucket, args.run_id, args.prefix)
        )
        if not done:
            print(f"run {args.run_id} does not hold the fleet: nothing released", file=sys.stderr)
        # The run gave the fleet back itself: its wrapper (ml/fleet_run.py) has nothing to do.
        state = os.environ.get("PALPITE_RUN_STATE", "")
        if state and os.environ.get("PALPITE_RUN_ID") == args.run_id:
            Path(state).unlink(missing_ok=True)
    elif args.command == "unlock":
        _unlock(s3, args)
    else:
        held = fleet_lock.read_lock(s3, args.bucket, args.prefix)
        journal = fleet_lock.read_journal(s3, args.bucket, args.prefix)
        print(status_text(held[0] if held else None, journal))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml.fleet_cli", description=__doc__)
    parser.add_argument(
        "command", choices=["status", "acquire", "begin", "phase", "finish", "release", "unlock"]
    )
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--prefix", default="", help="key prefix before locks/")
    parser.add_argument("--endpoint-url", default=None, help="S3 endpoint (tests, moto)")
    parser.add_argument("--operation", default="release")
    parser.add_argument("--target", default="")
    parser.add_argument("--previous", default="")
    parser.add_argument("--hosts", default="", help="comma-separated inventory names")
    parser.add_argument("--contract", default="", help="the input-contract changes (begin)")
    parser.add_argument("--host", default="")
    parser.add_argument("--phase", default="")
    parser.add_argument("--outcome", default="released")
    parser.add_argument("--run-id", default="")
    args = parser.parse_args(argv)
    try:
        run(args)
    except FleetBusyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BUSY
    except PalpiteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
