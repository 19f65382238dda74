"""The two action plugins the rolling flow runs on the controller, through ansible-playbook
as the playbooks run them:
- palpite_fleet_cli runs ml.fleet_cli in Ansible's worker: the same rc, stdout and stderr
  as the command (a busy fleet is exit 3 with one line, the journal gets each phase);
- palpite_steps_log writes a host's steps as JSON lines, and reports no change when the
  file holds them already;
- palpite_s3_object reads small objects (None for a missing key: the production pointer's
  "no release yet") and presigns, and a failed read is one line."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from tests.unit.release.playbook_run import BUCKET, fleet_vars, run_playbook, s3_of

INVENTORY = "app:\n  hosts:\n    app-1: {ansible_connection: local}\n"

FLEET = """
- name: Take the fleet, journal a phase, then be refused a second take
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Take the fleet
      ansible.builtin.include_tasks: TASKS/fleet_lock.yml
      vars: {fleet_lock_step: take, fleet_operation: release, fleet_lock_target: v1}
    - name: Start the journal
      ansible.builtin.include_tasks: TASKS/fleet_lock.yml
      vars: {fleet_lock_step: begin, fleet_operation: release, release_target: {version: v1}}

- name: A host leaves rotation
  hosts: app
  gather_facts: false
  tasks:
    - name: Note it
      ansible.builtin.include_tasks: TASKS/fleet_phase.yml
      vars: {fleet_phase: draining}

- name: A second run
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Ask for the fleet again, as another run would
      palpite_fleet_cli:
        argv: [acquire, "--bucket={{ release_bucket }}", --operation=rollback]
        environment: "{{ release_ml_environment }}"
        repo_dir: "{{ fleet_repo_dir }}"
      register: second
      failed_when: false
    - name: Show what it returned
      ansible.builtin.debug:
        msg: "SECOND rc={{ second.rc }} stderr={{ second.stderr }} stdout=[{{ second.stdout }}]"
"""


def test_the_fleet_command_runs_in_process_with_the_commands_results(
    tmp_path: Path, moto_endpoint: str
) -> None:
    rc, output = run_playbook(tmp_path, INVENTORY, FLEET, fleet_vars(moto_endpoint))
    assert rc == 0, output[-2000:]
    refused = "SECOND rc=3 stderr=error: rollback refused, the fleet is busy:"
    assert refused in output, output[-1500:]
    assert "stdout=[]" in output
    assert "Traceback" not in output
    journal = json.loads(
        s3_of(moto_endpoint).get_object(Bucket=BUCKET, Key="locks/journal.json")["Body"].read()
    )
    assert journal["target"] == "v1"
    assert journal["hosts"] == {"app-1": "draining"}


STEPS = """
- name: Log one host's steps twice
  hosts: app
  gather_facts: false
  tasks:
    - name: Write
      palpite_steps_log:
        dest: "{{ out }}/{{ inventory_hostname }}.jsonl"
        events: [{event: start, time: 1.5}, {event: registered, time: 2.5, detail: "a \\"b\\""}]
      register: first
    - name: Write the same again
      palpite_steps_log:
        dest: "{{ out }}/{{ inventory_hostname }}.jsonl"
        events: [{event: start, time: 1.5}, {event: registered, time: 2.5, detail: "a \\"b\\""}]
      register: again
    - name: Show both
      ansible.builtin.debug:
        msg: "FIRST {{ first.changed }} AGAIN {{ again.changed }}"
"""


def test_the_steps_log_writes_json_lines_once(tmp_path: Path) -> None:
    out = tmp_path / "events"
    out.mkdir()
    rc, output = run_playbook(tmp_path, INVENTORY, STEPS, {"out": str(out)})
    assert rc == 0, output[-2000:]
    assert "FIRST True AGAIN False" in output
    lines = (out / "app-1.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"event": "start", "time": 1.5},
        {"event": "registered", "time": 2.5, "detail": 'a "b"'},
    ]
    assert oct((out / "app-1.jsonl").stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in out.iterdir()] == ["app-1.jsonl"]  # no partial file left


S3 = """
- name: Read and presign in the controller's process
  hosts: localhost
  gather_facts: false
  vars:
    aws:
      {region: us-east-1, endpoint_url: "{{ endpoint }}", access_key: testing, secret_key: testing}
  tasks:
    - name: Read the production pointer, as the release playbooks do
      ansible.builtin.include_tasks: TASKS/release_read_pointer.yml
      vars: {release_pointer_key: models/production.json, aws_module_defaults: "{{ aws }}"}
    - name: Keep it
      ansible.builtin.set_fact: {present: "{{ release_pointer_read }}"}
    - name: Read a pointer that does not exist
      ansible.builtin.include_tasks: TASKS/release_read_pointer.yml
      vars: {release_pointer_key: models/none.json, aws_module_defaults: "{{ aws }}"}
    - name: Presign
      palpite_s3_object:
        mode: presign
        bucket: "{{ release_bucket }}"
        key: models/production.json
        expiry: 60
        aws: "{{ aws }}"
      no_log: true
      register: signed
    - name: Write what was read and the URL for the test
      ansible.builtin.copy:
        content: >-
          {{ {'present': present, 'absent': release_pointer_read, 'url': signed.url} | to_json }}
        dest: "{{ out }}"
        mode: "0600"
    - name: Read from a bucket that does not exist
      palpite_s3_object:
        bucket: palpite-no-such-bucket
        keys: [x.json]
        aws: "{{ aws }}"
      ignore_errors: true
    - name: Read with a connection setting it does not know
      palpite_s3_object:
        bucket: "{{ release_bucket }}"
        keys: [models/production.json]
        aws: "{{ aws | combine({'validate_certs': false}) }}"
"""


def test_s3_reads_and_presigns_in_process_and_fails_in_one_line(
    tmp_path: Path, moto_endpoint: str
) -> None:
    pointer = {"version": "v1", "sha256": "ab" * 32}
    s3_of(moto_endpoint).put_object(
        Bucket=BUCKET, Key="models/production.json", Body=json.dumps(pointer).encode()
    )
    out = tmp_path / "read.json"
    extra = {**fleet_vars(moto_endpoint), "endpoint": moto_endpoint, "out": str(out)}
    rc, output = run_playbook(tmp_path, INVENTORY, S3, extra)
    assert rc != 0  # the last task: the unknown setting
    read = json.loads(out.read_text())
    assert read["present"] == pointer
    assert read["absent"] == {}
    with urllib.request.urlopen(read["url"], timeout=10) as answer:  # moto, on loopback
        assert json.loads(answer.read()) == pointer
    assert "X-Amz-Signature" not in output  # the presigned URL is not logged
    failed = "cannot read s3://palpite-no-such-bucket/x.json: An error occurred (NoSuchBucket)"
    assert failed in output
    refused = f"cannot read s3://{BUCKET}/models/production.json: aws: validate_certs not supported"
    assert refused in output
    assert "Traceback" not in output
