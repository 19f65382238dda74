"""Register or deregister one target and wait, in one process: the rolling release's two
steps per change (community.aws.elb_target, then elb_target_group_info polled until the
target has drained or is healthy) were two module runs of about half a second each."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

DOCUMENTATION = r"""
module: palpite_elb_target
short_description: Register or deregister a target group's instance, then wait (drained, or healthy)
description:
  - O(state=absent) deregisters the target (when registered) and waits until the target
    group no longer lists it (its in-flight requests have drained).
  - O(state=present) registers it (when not registered) and, with O(wait_healthy), waits
    until its health state is C(healthy).
  - Returns the target group's targets and their health as last read, in the shape of
    community.aws.elb_target_group_info's C(target_groups[0]) (snake_case), so that a
    caller that follows the target group (the local front door) does not read it again.
  - Runs on the controller; credentials, region and endpoint as given or as boto3 finds them.
options:
  target_group_name: {type: str, required: true, description: The target group.}
  target_id: {type: str, required: true, description: The instance id.}
  target_port: {type: int, description: The target's port (the group's when omitted).}
  state: {type: str, required: true, choices: [present, absent], description: Registered or not.}
  wait_healthy: {type: bool, default: true, description: With state present, wait until healthy.}
  timeout: {type: int, default: 120, description: Seconds to wait before failing.}
  delay: {type: float, default: 2, description: Seconds between two reads while waiting.}
  region: {type: str, description: AWS region; boto3's default when omitted.}
  endpoint_url: {type: str, description: Another ELBv2 endpoint (moto).}
  access_key: {type: str, description: Access key id; boto3's default chain when omitted.}
  secret_key: {type: str, description: Secret access key (with access_key).}
"""

RETURN = r"""
target_group:
  {description: The group's name, ARN and targets_health_description as last read., type: dict}
"""


class TargetWaitError(Exception):
    """The target did not reach the state asked for in time."""


def _health(client: Any, arn: str) -> list[dict[str, Any]]:
    return client.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]


def _snake(descriptions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """elb_target_group_info's shape: target {id, port}, target_health {state, ...}."""
    out = []
    for d in descriptions:
        health = d.get("TargetHealth", {})
        out.append(
            {
                "target": {"id": d["Target"]["Id"], "port": d["Target"].get("Port")},
                "health_check_port": d.get("HealthCheckPort"),
                "target_health": {
                    k: v
                    for k, v in (
                        ("state", health.get("State")),
                        ("reason", health.get("Reason")),
                        ("description", health.get("Description")),
                    )
                    if v is not None
                },
            }
        )
    return out


def _state_of(descriptions: list[dict[str, Any]], target_id: str) -> str | None:
    """The target's health state, or None when the group does not list it."""
    for d in descriptions:
        if d["Target"]["Id"] == target_id:
            return d.get("TargetHealth", {}).get("State")
    return None


def change_registration(
    client: Any,
    group_name: str,
    target_id: str,
    state: str,
    *,
    port: int | None = None,
    wait_healthy: bool = True,
    timeout: float = 120,
    delay: float = 2,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[bool, dict[str, Any]]:
    """(changed, target group as last read). Raises TargetWaitError after `timeout`."""
    group = client.describe_target_groups(Names=[group_name])["TargetGroups"][0]
    arn = group["TargetGroupArn"]
    target = {"Id": target_id} | ({"Port": port} if port else {})
    found = _health(client, arn)
    current = _state_of(found, target_id)
    changed = False
    if state == "present" and current in (None, "unused", "draining"):
        client.register_targets(TargetGroupArn=arn, Targets=[target])
        changed = True
    elif state == "absent" and current not in (None, "draining"):  # "unused" too: still registered
        client.deregister_targets(TargetGroupArn=arn, Targets=[target])
        changed = True

    def reached(descriptions: list[dict[str, Any]]) -> bool:
        now = _state_of(descriptions, target_id)
        if state == "absent":
            return now is None  # the group lists registered and draining targets only
        return not wait_healthy or now == "healthy"

    deadline = clock() + timeout
    found = _health(client, arn) if changed else found
    while not reached(found):
        if clock() >= deadline:
            raise TargetWaitError(
                f"{target_id} in {group_name}: still {_state_of(found, target_id) or 'not listed'}"
                f" after {timeout:g} s (waiting until it "
                f"{'has drained' if state == 'absent' else 'is healthy'})"
            )
        sleep(delay)
        found = _health(client, arn)
    return changed, {
        "target_group_name": group_name,
        "target_group_arn": arn,
        "targets_health_description": _snake(found),
    }


def main() -> None:
    from ansible.module_utils.basic import AnsibleModule

    module = AnsibleModule(
        argument_spec={
            "target_group_name": {"type": "str", "required": True},
            "target_id": {"type": "str", "required": True},
            "target_port": {"type": "int"},
            "state": {"type": "str", "required": True, "choices": ["present", "absent"]},
            "wait_healthy": {"type": "bool", "default": True},
            "timeout": {"type": "int", "default": 120},
            "delay": {"type": "float", "default": 2},
            "region": {"type": "str"},
            "endpoint_url": {"type": "str"},
            "access_key": {"type": "str", "no_log": True},
            "secret_key": {"type": "str", "no_log": True},
        },
        required_together=[["access_key", "secret_key"]],
    )
    p = module.params
    import boto3
    import botocore.exceptions

    client = boto3.client(
        "elbv2",
        region_name=p["region"],
        endpoint_url=p["endpoint_url"] or None,
        aws_access_key_id=p["access_key"],
        aws_secret_access_key=p["secret_key"],
    )
    try:
        changed, group = change_registration(
            client,
            p["target_group_name"],
            p["target_id"],
            p["state"],
            port=p["target_port"],
            wait_healthy=p["wait_healthy"],
            timeout=p["timeout"],
            delay=p["delay"],
        )
    except TargetWaitError as exc:
        module.fail_json(msg=str(exc))
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        module.fail_json(msg=f"{p['target_id']} in {p['target_group_name']}: {exc}")
    module.exit_json(changed=changed, target_group=group)


if __name__ == "__main__":
    main()
