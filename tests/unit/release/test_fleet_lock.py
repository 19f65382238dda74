"""The fleet lock and the release journal (ml/fleet_lock.py) against a real moto server.

moto honours S3 conditional writes (If-None-Match on put, If-Match on delete), as S3 does.
"""

import datetime as dt
import json
import threading
import time

import pytest

from ml import fleet_cli, fleet_lock
from ml.errors import PalpiteError
from ml.fleet_lock import FleetBusyError, Lock, acquire, release
from ml.s3 import s3_client

BUCKET = "palpite-test-artifacts"


@pytest.fixture
def s3(moto_server: str):
    client = s3_client()
    client.create_bucket(Bucket=BUCKET)
    return client


def test_a_second_run_is_refused_naming_the_holder_and_changes_nothing(s3) -> None:
    first = acquire(s3, BUCKET, "release", "v2", holder="ana@laptop")
    with pytest.raises(FleetBusyError) as refused:
        acquire(s3, BUCKET, "rollback", holder="bea@ci")
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("rollback refused, the fleet is busy: ana@laptop holds the fleet")
    assert f"release v2, run {first.run_id}" in message
    assert "make release-unlock" in message
    held, _ = fleet_lock.read_lock(s3, BUCKET)
    assert held == first


def test_of_runs_started_together_exactly_one_gets_the_fleet(s3) -> None:
    barrier = threading.Barrier(8)
    won: list[Lock] = []
    refused: list[str] = []

    def attempt(i: int) -> None:
        barrier.wait()
        try:
            won.append(acquire(s3, BUCKET, "release", f"v{i}", holder=f"run{i}@here"))
        except FleetBusyError as exc:
            refused.append(str(exc))

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(won) == 1 and len(refused) == 7
    assert fleet_lock.read_lock(s3, BUCKET)[0] == won[0]
    assert all(won[0].holder in message for message in refused)


def test_only_the_holder_releases_and_then_the_fleet_is_free(s3) -> None:
    lock = acquire(s3, BUCKET, "release", "v2")
    assert release(s3, BUCKET, "someone-else") is False
    assert fleet_lock.read_lock(s3, BUCKET)[0] == lock
    assert release(s3, BUCKET, lock.run_id) is True
    assert fleet_lock.read_lock(s3, BUCKET) is None
    assert release(s3, BUCKET, lock.run_id) is False  # twice: nothing to do
    acquire(s3, BUCKET, "release-app")  # free again


def test_a_prefix_keeps_environments_apart(s3) -> None:
    acquire(s3, BUCKET, "release", prefix="staging")
    acquire(s3, BUCKET, "release", prefix="prod/")  # another key: not refused
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert keys == {"staging/locks/fleet.json", "prod/locks/fleet.json"}


def test_a_stale_lock_shows_its_age_and_unlock_reports_the_unfinished_journal(
    s3, capsys: pytest.CaptureFixture[str]
) -> None:
    since = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2, minutes=5)).isoformat()
    stale = Lock("dead00000000", "ana@lost-laptop", "release", "v2", since)
    s3.put_object(Bucket=BUCKET, Key="locks/fleet.json", Body=json.dumps(stale.__dict__))
    fleet_lock.write_journal(
        s3, BUCKET, stale, "v1", {"i-canary": "registered", "i-second": "draining"}
    )

    assert fleet_cli.main(["status", "--bucket", BUCKET]) == 0
    status = capsys.readouterr().out
    assert "ana@lost-laptop holds the fleet since" in status
    assert "(2 h 5 min ago): release v2, run dead00000000" in status
    assert "release v1 -> v2, NOT finished" in status
    assert "  i-second: draining" in status

    t0 = time.monotonic()
    assert fleet_cli.main(["acquire", "--bucket", BUCKET, "--target", "v3"]) == 3
    assert time.monotonic() - t0 < 10
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("error: release refused")
    assert "ana@lost-laptop" in error and "2 h 5 min ago" in error

    assert fleet_cli.main(["unlock", "--bucket", BUCKET]) == 0
    out = capsys.readouterr().out
    assert "broke the lock: ana@lost-laptop" in out
    assert "the journal left unfinished: i-canary: registered; i-second: draining" in out
    assert fleet_lock.read_lock(s3, BUCKET) is None
    assert fleet_cli.main(["acquire", "--bucket", BUCKET]) == 0
    # What the reconcile registers again: the hosts whose phase is not at rest.
    taken = json.loads(capsys.readouterr().out)
    assert taken["unfinished"]["out_of_rotation"] == ["i-second"]
    assert taken["unfinished"]["hosts"] == {"i-canary": "registered", "i-second": "draining"}


def test_a_finished_journal_leaves_nothing_unfinished() -> None:
    journal = {"finished": True, "hosts": {"i-a": "draining"}}
    assert fleet_lock.unfinished(journal) == []
    assert fleet_lock.unfinished(None) == []
    journal = {"finished": False, "hosts": {"i-a": "switched", "i-b": "not reached"}}
    assert fleet_lock.unfinished(journal) == ["i-a: switched"]


def test_a_release_stopped_with_a_host_moved_and_registered_is_unfinished() -> None:
    # The canary serves the target again, the second host was never reached, and the run
    # died before the pointer moved: the fleet is on two versions until finished or undone.
    hosts = {"i-a": "registered", "i-b": "pending"}
    for operation in ("release", "rollback", "release-app"):
        journal = {"finished": False, "operation": operation, "hosts": hosts}
        assert fleet_lock.unfinished(journal) == ["i-a: registered"]
        assert fleet_lock.out_of_rotation(journal) == []
    for operation in ("restart", "patch"):  # no version to be half on
        assert (
            fleet_lock.unfinished({"finished": False, "operation": operation, "hosts": hosts}) == []
        )
    assert fleet_lock.unfinished({"finished": True, "operation": "release", "hosts": hosts}) == []


def test_the_journal_follows_each_host_and_finishing_frees_the_fleet(
    s3, capsys: pytest.CaptureFixture[str]
) -> None:
    assert fleet_cli.main(["acquire", "--bucket", BUCKET, "--run-id", "run1"]) == 0
    assert json.loads(capsys.readouterr().out) == {"run_id": "run1", "unfinished": None}
    begin = ["begin", "--bucket", BUCKET, "--run-id", "run1", "--target", "v2"]
    contract = ["--contract", "removed values home_team: 'Bahia'"]
    assert fleet_cli.main([*begin, "--previous", "v1", "--hosts", "i-a,i-b", *contract]) == 0
    assert fleet_lock.read_journal(s3, BUCKET)["contract"] == "removed values home_team: 'Bahia'"
    assert fleet_cli.main(["begin", "--bucket", BUCKET, "--run-id", "other"]) == 1
    assert "run other does not hold the fleet" in capsys.readouterr().err

    # Hosts of one batch report together: every phase lands (If-Match, retried).
    barrier = threading.Barrier(2)

    def report(host: str) -> None:
        barrier.wait()
        for phase in ("start", "draining", "switched"):
            fleet_lock.set_phase(s3, BUCKET, "run1", host, phase)

    threads = [threading.Thread(target=report, args=(h,)) for h in ("i-a", "i-b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    journal = fleet_lock.read_journal(s3, BUCKET)
    assert journal["hosts"] == {"i-a": "switched", "i-b": "switched"}
    assert journal["target"] == "v2" and journal["previous"] == "v1"
    assert fleet_lock.unfinished(journal) == ["i-a: switched", "i-b: switched"]

    # Interrupted: the lock given back, the journal kept; the next run is told about it.
    assert fleet_cli.main(["release", "--bucket", BUCKET, "--run-id", "run1"]) == 0
    capsys.readouterr()
    assert fleet_cli.main(["acquire", "--bucket", BUCKET, "--run-id", "run2"]) == 0
    taken = json.loads(capsys.readouterr().out)
    assert taken["unfinished"]["run_id"] == "run1"
    assert taken["unfinished"]["hosts"]["i-b"] == "switched"

    # The next run's journal keeps the hosts left out until they are back; finishing with
    # one still out gives the fleet back but leaves the journal open ...
    assert fleet_cli.main([*begin[:4], "run2", "--hosts", "i-a,i-b,i-c"]) == 0
    journal = fleet_lock.read_journal(s3, BUCKET)
    assert journal["hosts"] == {"i-a": "switched", "i-b": "switched", "i-c": "pending"}
    fleet_lock.set_phase(s3, BUCKET, "run2", "i-a", "registered")
    assert fleet_cli.main(["finish", "--bucket", BUCKET, "--run-id", "run2"]) == 0
    assert fleet_lock.read_lock(s3, BUCKET) is None
    journal = fleet_lock.read_journal(s3, BUCKET)
    assert fleet_lock.out_of_rotation(journal) == ["i-b: switched"]
    assert fleet_lock.unfinished(journal) == ["i-a: registered", "i-b: switched"]
    # ... and a run that ends with every host at rest finishes it.
    assert fleet_cli.main(["acquire", "--bucket", BUCKET, "--run-id", "run3"]) == 0
    assert fleet_cli.main([*begin[:4], "run3", "--hosts", "i-a,i-b"]) == 0
    fleet_lock.set_phase(s3, BUCKET, "run3", "i-b", "registered")
    assert fleet_cli.main(["finish", "--bucket", BUCKET, "--run-id", "run3"]) == 0
    assert fleet_lock.read_lock(s3, BUCKET) is None
    journal = fleet_lock.read_journal(s3, BUCKET)
    assert journal["finished"] is True and journal["outcome"] == "released"
    assert fleet_lock.unfinished(journal) == []
    with pytest.raises(PalpiteError, match="run run1 has no journal"):
        fleet_lock.set_phase(s3, BUCKET, "run1", "i-a", "draining")
