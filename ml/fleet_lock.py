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

The playbooks drive it through ml/fleet_cli.py; ml/fleet_run.py gives the lock back when a
run is interrupted.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import socket
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from ml.errors import PalpiteError

LOCK_KEY = "locks/fleet.json"
JOURNAL_KEY = "locks/journal.json"
# A host's phases in which it is registered and serves: before its drain (start), after it
# is back (registered, rolled_back), or never touched.
AT_REST = frozenset({"pending", "start", "registered", "rolled_back", "unchanged", "not reached"})


# Operations that move hosts from one version to another (not a restart or an OS patch).
VERSIONED = frozenset({"release", "rollback", "release-app"})


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
    run_id: str = "",
) -> Lock:
    """Take the fleet for one run, or raise FleetBusyError naming who has it."""
    lock = Lock(
        run_id=run_id or new_run_id(),
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


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


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
    s3: Any,
    bucket: str,
    lock: Lock,
    previous: str,
    hosts: dict[str, str],
    prefix: str = "",
    target: str = "",
) -> dict[str, Any]:
    """The run's journal: its target (the lock's unless known better by now), the version it
    replaces, each host's phase."""
    journal = {
        "run_id": lock.run_id,
        "operation": lock.operation,
        "target": target or lock.target,
        "previous": previous,
        "hosts": hosts,
        "finished": False,
        "updated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    _put_json(s3, bucket, _key(prefix, JOURNAL_KEY), journal)
    return journal


def set_phase(
    s3: Any, bucket: str, run_id: str, host: str, phase: str, prefix: str = ""
) -> dict[str, Any]:
    """Record one host's phase in the run's journal."""
    return _update(s3, bucket, run_id, prefix, lambda j: j["hosts"].__setitem__(host, phase))


def annotate(
    s3: Any, bucket: str, run_id: str, fields: dict[str, Any], prefix: str = ""
) -> dict[str, Any]:
    """Add top-level fields to the run's journal (e.g. the input-contract changes)."""
    return _update(s3, bucket, run_id, prefix, lambda j: j.update(fields))


def _update(
    s3: Any, bucket: str, run_id: str, prefix: str, change: Callable[[dict[str, Any]], None]
) -> dict[str, Any]:
    """Change the run's journal, conditional on its ETag (If-Match) and retried: hosts of
    one batch report at the same time."""
    key = _key(prefix, JOURNAL_KEY)
    for _ in range(20):
        found = _read(s3, bucket, key)
        if found is None or found[0]["run_id"] != run_id:
            raise PalpiteError(f"run {run_id} has no journal at s3://{bucket}/{key}")
        journal, etag = found
        change(journal)
        journal["updated"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        try:
            _put_json(s3, bucket, key, journal, IfMatch=etag)
        except Exception as exc:
            if _code(exc) in {"PreconditionFailed", "ConditionalRequestConflict"}:
                continue
            raise PalpiteError(f"cannot write s3://{bucket}/{key}: {exc}") from None
        return journal
    raise PalpiteError(f"s3://{bucket}/{key} kept changing: the journal was not updated")


def finish(s3: Any, bucket: str, run_id: str, outcome: str, prefix: str = "") -> bool:
    """The run ended (released, or every host that moved put back): its journal records the
    outcome and is marked finished when every host is at rest (a host whose putting back
    failed keeps it open for the next run's reconcile); then the lock is given back."""
    key = _key(prefix, JOURNAL_KEY)
    found = _read(s3, bucket, key)
    if found is not None and found[0]["run_id"] == run_id:
        journal = found[0] | {
            "finished": not out_of_rotation(found[0] | {"finished": False}),
            "outcome": outcome,
            "updated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        _put_json(s3, bucket, key, journal)
    return release(s3, bucket, run_id, prefix)


def _put_json(s3: Any, bucket: str, key: str, body: dict[str, Any], **condition: str) -> None:
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=json.dumps(body, indent=2).encode(),
        ContentType="application/json",
        **condition,
    )


def hosts_out_of_rotation(journal: dict[str, Any] | None) -> list[str]:
    """The hosts an unfinished run left out of rotation (what a reconcile registers again)."""
    if not journal or journal.get("finished"):
        return []
    return [h for h, p in sorted(journal["hosts"].items()) if p not in AT_REST]


def out_of_rotation(journal: dict[str, Any] | None) -> list[str]:
    """Each host an unfinished run left out of rotation, as 'host: phase'."""
    hosts = journal["hosts"] if journal else {}
    return [f"{h}: {hosts[h]}" for h in hosts_out_of_rotation(journal)]


def unfinished(journal: dict[str, Any] | None) -> list[str]:
    """What an interrupted run left, as 'host: phase': each host out of rotation and, for a
    run that changes versions, each host it registered again, which may serve its target
    while production's pointer names the version before: the fleet is on two versions
    until the run is finished or undone."""
    left = out_of_rotation(journal)
    if journal and not journal.get("finished") and journal.get("operation") in VERSIONED:
        left += [f"{h}: {p}" for h, p in sorted(journal["hosts"].items()) if p == "registered"]
    return sorted(left)
