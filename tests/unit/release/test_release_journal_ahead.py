"""The per-host flow journals a host's leaving rotation before it deregisters it: a run
that dies during the drain must leave a journal naming the host out of rotation, so the
next run's reconcile registers it again (playbooks/fleet_reconcile.yml)."""

from pathlib import Path
from typing import Any

import yaml

from ml.fleet_lock import AT_REST, hosts_out_of_rotation

FLOW = Path(__file__).resolve().parents[3] / "playbooks" / "tasks" / "release_host.yml"


def _moving_steps() -> list[dict[str, Any]]:
    tasks = yaml.safe_load(FLOW.read_text())
    (move,) = [t for t in tasks if t.get("name") == "Move this host"]
    return move["block"]


def _index(steps: list[dict[str, Any]], include: str, **wanted: str) -> int:
    found = [
        i
        for i, step in enumerate(steps)
        if step.get("ansible.builtin.include_tasks") == include
        and all(step.get("vars", {}).get(k) == v for k, v in wanted.items())
    ]
    assert len(found) == 1, (include, wanted, found)
    return found[0]


def test_leaving_rotation_is_journaled_before_the_deregistration():
    steps = _moving_steps()
    ahead = _index(steps, "fleet_phase.yml", fleet_phase="draining")
    deregister = _index(steps, "release_lb.yml", release_lb_state="absent")
    assert ahead < deregister
    # Nothing between them can fail the host before the write is in (only the write).
    assert deregister == ahead + 1


def test_the_phase_written_ahead_counts_as_out_of_rotation():
    # The reconcile and `make release-status` treat every phase outside AT_REST as a host
    # left out of rotation; "draining" must be one of those.
    assert "draining" not in AT_REST
    journal = {"finished": False, "hosts": {"i-a": "draining", "i-b": "registered"}}
    assert hosts_out_of_rotation(journal) == ["i-a"]
    # The reconcile registers exactly the hosts the fleet CLI names (no list of its own).
    reconcile = yaml.safe_load((FLOW.parents[1] / "fleet_reconcile.yml").read_text())
    [serve_again] = reconcile[0]["tasks"]
    assert "inventory_hostname in fleet_left.out_of_rotation | default([])" in serve_again["when"]
    assert "fleet_at_rest" not in reconcile[0]["vars"]


def _journaled_events() -> set[str]:
    tasks = yaml.safe_load((FLOW.parent / "release_event.yml").read_text())
    (write,) = [t for t in tasks if t.get("ansible.builtin.include_tasks") == "fleet_phase.yml"]
    condition = write["when"]
    assert condition.startswith("release_event in "), condition
    return set(yaml.safe_load(condition.removeprefix("release_event in ")))


def test_every_way_back_into_rotation_is_journaled():
    # "draining" is written ahead and counts as out of rotation until a later write: each
    # event that ends a host's flow in rotation must reach the journal, or a finished host
    # would look left out to the next run.
    journaled = _journaled_events()
    assert {"registered", "rolled_back"} <= journaled
    assert journaled <= AT_REST | {"failed"}
    # Steps inside the drained window (switched, healthy) add nothing a reconcile uses:
    # the host is out of rotation either way.
    assert not journaled & {"switched", "healthy", "drained"}
