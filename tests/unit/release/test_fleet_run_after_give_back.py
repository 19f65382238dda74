"""A playbook that gave the fleet back (python_builder.yml's build, run by site.yml before
configure.yml) holds no run any more: configure.yml's journal, guarded by the run id, must
not start for a run that is over. ansible-playbook runs tasks/fleet_lock.yml on the
controller against a moto server, as site.yml does with the builder and no restart."""

from __future__ import annotations

from pathlib import Path

from tests.unit.release.playbook_run import BUCKET, fleet_vars, run_playbook, s3_of

PLAYBOOK = """
- name: Build, as python_builder.yml does (take the fleet, give it back)
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Take the fleet
      ansible.builtin.include_tasks: TASKS/fleet_lock.yml
      vars: {fleet_lock_step: take, fleet_operation: python-build, fleet_lock_target: x86_64}
    - name: Give it back
      ansible.builtin.include_tasks: TASKS/fleet_lock.yml
      vars: {fleet_lock_step: give_back}

- name: Start the journal, as configure.yml does when a restart took the fleet
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Decide whether this run may go on, and start its journal
      ansible.builtin.include_tasks: TASKS/fleet_lock.yml
      vars:
        fleet_lock_step: begin
        fleet_operation: restart
        release_target: {version: restart}
      when: fleet_run_id | default('') | length > 0
"""


def test_a_run_that_gave_the_fleet_back_starts_no_journal(
    tmp_path: Path, moto_endpoint: str
) -> None:
    rc, output = run_playbook(
        tmp_path, "app:\n  hosts:\n    app-1: {ansible_connection: local}\n", PLAYBOOK,
        fleet_vars(moto_endpoint),
    )  # fmt: skip
    assert rc == 0, output[-2000:]
    assert "does not hold the fleet" not in output
    listed = s3_of(moto_endpoint).list_objects_v2(Bucket=BUCKET)
    keys = [o["Key"] for o in listed.get("Contents", [])]
    assert "locks/fleet.json" not in keys  # given back, and not taken by the journal's start
