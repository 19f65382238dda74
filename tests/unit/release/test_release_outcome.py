"""The rollout's last step (playbooks/tasks/release_outcome.yml) and the one way a host
stops the release (release_stop.yml, through release_host_failed.yml), run by
ansible-playbook on the controller with two app "hosts" (connection local) whose flow
results are set as the per-host flow leaves them:

- a host without a result dropped out of the run half-way: the run stops saying so and
  that the pointer is unchanged, and the summary names it;
- two hosts failing one after the other: the stop is named by the first;
- every host with a result and none failed: the run goes on.
"""

from __future__ import annotations

from pathlib import Path

from tests.unit.release.playbook_run import run_playbook

INVENTORY = """
app:
  hosts:
    app-1: {ansible_connection: local, ansible_host: 10.0.0.1}
    app-2: {ansible_connection: local, ansible_host: 10.0.0.2}
"""

PLAYBOOK = """
- name: Leave each host as its flow would
  hosts: app
  serial: 1
  gather_facts: false
  vars:
    release_host_what: Release of model v2
    release_host_old_version: v1
    release_host_started: "{{ now().timestamp() }}"
  tasks:
    - name: Released
      ansible.builtin.set_fact:
        release_host_result: {status: released, old_version: v1, version: v2, seconds: 3.5}
      when: inventory_hostname in released
    - name: Failed, as the flow's rescue ends
      ansible.builtin.include_tasks: TASKS/release_host_failed.yml
      vars:
        release_host_error: "Switch: the model did not load on {{ inventory_hostname }}"
      when: inventory_hostname in failed

- name: Sum up
  hosts: localhost
  gather_facts: false
  tasks:
    - name: The outcome
      ansible.builtin.include_tasks: TASKS/release_outcome.yml
      vars:
        release_pointer_name: models/production.json
"""


def run(tmp_path: Path, released: list[str], failed: list[str]) -> tuple[int, str]:
    return run_playbook(tmp_path, INVENTORY, PLAYBOOK, {"released": released, "failed": failed})


def test_a_host_that_dropped_out_half_way_stops_the_run_and_the_pointer(tmp_path: Path) -> None:
    rc, output = run(tmp_path, released=["app-1"], failed=[])
    assert rc != 0
    assert "app-1: released v1 -> v2 (3.5 s)" in output
    assert "app-2: dropped out of the run" in output
    assert "app-2 dropped out of the run (unreachable half-way)" in output
    assert "models/production.json is unchanged" in output


def test_the_first_failure_names_the_stop(tmp_path: Path) -> None:
    rc, output = run(tmp_path, released=[], failed=["app-1", "app-2"])
    assert rc != 0
    assert 'Release of model v2 stopped on app-1 (10.0.0.1) at "Switch: the model did not' in output
    assert "stopped on app-2" not in output
    assert "app-1 is back on v1 and registered again." in output
    assert "(all or none)" in output
    assert "dropped out" not in output


def test_every_host_through_the_flow_lets_the_run_go_on(tmp_path: Path) -> None:
    rc, output = run(tmp_path, released=["app-1", "app-2"], failed=[])
    assert rc == 0, output[-2000:]
    assert "app-2: released v1 -> v2" in output
