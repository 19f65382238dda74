"""One change at a time per environment: the fleet lock and the release journal.

Both live in the environment's artifact bucket, beside the artifacts they roll out:
  <prefix>locks/fleet.json     who holds the fleet (user@host), what they are doing
                               (operation, target version), since when, and the run's id;
                               created with an S3 conditional write (If-None-Match: *), so
                               of two runs that start together exactly one gets it
  <prefix>locks/journal.json   the run's target, the version it replaces, and each host's
                               phase as it moves; kept after the lock is released when the
                               run did not finish, so the next run can reconcile first

Released with If-Match on the lock's ETag: a run never removes a lock it does not hold.
`unlock` breaks a stale lock (its holder died) only when asked, and says what the journal
left unfinished.

    python -m ml.fleet_lock status  --bucket B [--prefix P]
    python -m ml.fleet_lock acquire --bucket B --operation release --target V
    python -m ml.fleet_lock release --bucket B --run-id ID
    python -m ml.fleet_lock unlock  --bucket B
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import socket
import sys
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ml.errors import PalpiteError
from ml.s3 import s3_client

LOCK_KEY = "locks/fleet.json"
JOURNAL_KEY = "locks/journal.json"


class FleetBusyError(PalpiteError):
    """Another run holds the fleet."""


@dataclass(frozen=True)
class Lock:
    run_id: str
    holder: str  # user@host
    operation: str  # release, rollback, release-app, patch, configure
    target: str
    since: str  # ISO 8601, UTC

    def age_seconds(self, now: dt.datetime | None = None) -> float:
        now = now or dt.datetime.now(dt.UTC)
        return (now - dt.datetime.fromisoformat(self.since)).total_seconds()

    def describe(self, now: dt.datetime | None = None) -> str:
        return (
            f"{self.holder} holds the fleet since {self.since} ({_age(self.age_seconds(now))}"
            f" ago): {self.operation} {self.target or '(no target)'}, run {self.run_id}"
        )


def _age(seconds: float) -> str:
    minutes, secs = divmod(int(max(seconds, 0)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min {secs} s"


def _key(prefix: str, key: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/{key}" if prefix else key


def _code(exc: Exception) -> str:
    return getattr(exc, "response", {}).get("Error", {}).get("Code", "")


def _read(s3: Any, bucket: str, key: str) -> tuple[dict[str, Any], str] | None:
    """The object's JSON and ETag, or None when there is none."""
    try:
        obj = s3.get_object(Bucket=bucket, Key=key)
    except Exception as exc:
        if _code(exc) in {"NoSuchKey", "404"}:
            return None
        raise PalpiteError(f"cannot read s3://{bucket}/{key}: {exc}") from None
    return json.loads(obj["Body"].read()), obj["ETag"]


def read_lock(s3: Any, bucket: str, prefix: str = "") -> tuple[Lock, str] | None:
    found = _read(s3, bucket, _key(prefix, LOCK_KEY))
    return None if found is None else (Lock(**found[0]), found[1])


def acquire(
    s3: Any,
    bucket: str,
    operation: str,
    target: str = "",
    prefix: str = "",
    holder: str | None = None,
) -> Lock:
    """Take the fleet for one run, or raise FleetBusyError naming who has it."""
    lock = Lock(
        run_id=uuid.uuid4().hex[:12],
        holder=holder or f"{getpass.getuser()}@{socket.gethostname()}",
        operation=operation,
        target=target,
        since=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )
    key = _key(prefix, LOCK_KEY)
    try:
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=json.dumps(asdict(lock)).encode(),
            ContentType="application/json",
            IfNoneMatch="*",
        )
    except Exception as exc:
        if _code(exc) not in {"PreconditionFailed", "ConditionalRequestConflict"}:
            raise PalpiteError(f"cannot write s3://{bucket}/{key}: {exc}") from None
        held = read_lock(s3, bucket, prefix)
        who = held[0].describe() if held else "another run (its lock just went away: retry)"
        raise FleetBusyError(
            f"{operation} refused, the fleet is busy: {who}. Wait for it; if that run is dead,"
            " `make release-status` shows its journal and `make release-unlock` breaks the lock"
        ) from None
    return lock


def release(s3: Any, bucket: str, run_id: str, prefix: str = "") -> bool:
    """Give the fleet back; only the run holding it can (If-Match on its ETag).

    False when this run did not hold it (someone broke the lock meanwhile)."""
    held = read_lock(s3, bucket, prefix)
    if held is None or held[0].run_id != run_id:
        return False
    try:
        s3.delete_object(Bucket=bucket, Key=_key(prefix, LOCK_KEY), IfMatch=held[1])
    except Exception as exc:
        if _code(exc) == "PreconditionFailed":
            return False
        raise PalpiteError(f"cannot remove the fleet lock: {exc}") from None
    return True


def unlock(s3: Any, bucket: str, prefix: str = "") -> tuple[Lock | None, dict[str, Any] | None]:
    """Break the lock whoever holds it; returns it and the journal it left."""
    held = read_lock(s3, bucket, prefix)
    if held is not None:
        s3.delete_object(Bucket=bucket, Key=_key(prefix, LOCK_KEY), IfMatch=held[1])
    return (held[0] if held else None), read_journal(s3, bucket, prefix)


# ---------------------------------------------------------------------- the journal


def read_journal(s3: Any, bucket: str, prefix: str = "") -> dict[str, Any] | None:
    found = _read(s3, bucket, _key(prefix, JOURNAL_KEY))
    return None if found is None else found[0]


def write_journal(
    s3: Any, bucket: str, lock: Lock, previous: str, hosts: dict[str, str], prefix: str = ""
) -> dict[str, Any]:
    """The run's journal: its target, the version it replaces, each host's phase."""
    journal = {
        "run_id": lock.run_id,
        "operation": lock.operation,
        "target": lock.target,
        "previous": previous,
        "hosts": hosts,
        "finished": False,
        "updated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    s3.put_object(
        Bucket=bucket,
        Key=_key(prefix, JOURNAL_KEY),
        Body=json.dumps(journal, indent=2).encode(),
        ContentType="application/json",
    )
    return journal


def unfinished(journal: dict[str, Any] | None) -> list[str]:
    """What an interrupted run left: each host not back at rest, as 'host: phase'."""
    if not journal or journal.get("finished"):
        return []
    at_rest = {"pending", "registered", "unchanged", "not reached"}
    return [f"{h}: {p}" for h, p in sorted(journal["hosts"].items()) if p not in at_rest]


# ---------------------------------------------------------------------- command line


def _status(lock: Lock | None, journal: dict[str, Any] | None) -> str:
    lines = [lock.describe() if lock else "the fleet is free"]
    if journal:
        state = "finished" if journal.get("finished") else "NOT finished"
        lines.append(
            f"journal of run {journal['run_id']}: {journal['operation']} {journal['previous']}"
            f" -> {journal['target']}, {state}, updated {journal['updated']}"
        )
        lines += [f"  {h}: {p}" for h, p in sorted(journal["hosts"].items())]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml.fleet_lock", description=__doc__)
    parser.add_argument("command", choices=["status", "acquire", "release", "unlock"])
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--prefix", default="", help="key prefix before locks/")
    parser.add_argument("--endpoint-url", default=None, help="S3 endpoint (tests, moto)")
    parser.add_argument("--operation", default="release")
    parser.add_argument("--target", default="")
    parser.add_argument("--run-id", default="")
    args = parser.parse_args(argv)
    s3 = s3_client(args.endpoint_url)
    try:
        if args.command == "acquire":
            print(acquire(s3, args.bucket, args.operation, args.target, args.prefix).run_id)
        elif args.command == "release":
            if not release(s3, args.bucket, args.run_id, args.prefix):
                print(
                    f"run {args.run_id} does not hold the fleet: nothing released", file=sys.stderr
                )
        elif args.command == "unlock":
            lock, journal = unlock(s3, args.bucket, args.prefix)
            print(f"broke the lock: {lock.describe()}" if lock else "the fleet was not locked")
            left = unfinished(journal)
            print(
                "the journal left unfinished: " + "; ".join(left)
                if left
                else "nothing left unfinished"
            )
        else:
            held = read_lock(s3, args.bucket, args.prefix)
            print(_status(held[0] if held else None, read_journal(s3, args.bucket, args.prefix)))
    except PalpiteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
