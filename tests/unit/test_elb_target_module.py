"""plugins/modules/palpite_elb_target.py against moto's ELBv2: one call registers or
deregisters a target, waits, and returns the group as last read (the front door follows it)."""

import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "plugins" / "modules"))

from palpite_elb_target import TargetWaitError, change_registration  # noqa: E402

GROUP = "palpite-test-app"


@pytest.fixture
def elbv2() -> Any:
    with mock_aws():
        ec2 = boto3.client("ec2", region_name="us-east-1")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        image = ec2.describe_images()["Images"][0]["ImageId"]
        ids = [
            i["InstanceId"]
            for i in ec2.run_instances(ImageId=image, MinCount=2, MaxCount=2)["Instances"]
        ]
        client = boto3.client("elbv2", region_name="us-east-1")
        client.create_target_group(Name=GROUP, Protocol="HTTP", Port=80, VpcId=vpc)
        client.ids = ids  # type: ignore[attr-defined]
        yield client


def _listed(group: dict[str, Any]) -> set[str]:
    return {d["target"]["id"] for d in group["targets_health_description"]}


def test_register_then_deregister_returns_the_group_as_it_is_now(elbv2: Any) -> None:
    a, b = elbv2.ids
    changed, group = change_registration(elbv2, GROUP, a, "present", port=80)
    assert changed and _listed(group) == {a}
    changed, group = change_registration(elbv2, GROUP, b, "present", port=80)
    assert changed and _listed(group) == {a, b}
    assert {d["target_health"]["state"] for d in group["targets_health_description"]} == {"healthy"}
    changed, group = change_registration(elbv2, GROUP, a, "absent", port=80)
    assert changed and _listed(group) == {b}
    # The same request again changes nothing and returns at once.
    assert change_registration(elbv2, GROUP, a, "absent", port=80)[0] is False
    assert change_registration(elbv2, GROUP, b, "present", port=80)[0] is False


class _Draining:
    """A client whose deregistered target stays 'draining' for `reads` more reads (moto
    removes it at once; a real load balancer keeps it for the deregistration delay)."""

    def __init__(self, client: Any, target: str, reads: int) -> None:
        self.client, self.target, self.reads = client, target, reads
        self.slept: list[float] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def describe_target_health(self, **kwargs: Any) -> dict[str, Any]:
        found = self.client.describe_target_health(**kwargs)
        if self.reads > 0 and not any(
            d["Target"]["Id"] == self.target for d in found["TargetHealthDescriptions"]
        ):
            self.reads -= 1
            draining = {
                "Target": {"Id": self.target, "Port": 80},
                "TargetHealth": {"State": "draining"},
            }
            found["TargetHealthDescriptions"].append(draining)
        return found


def test_absent_waits_until_the_target_has_drained(elbv2: Any) -> None:
    a, _ = elbv2.ids
    change_registration(elbv2, GROUP, a, "present", port=80)
    client = _Draining(elbv2, a, reads=3)
    changed, group = change_registration(
        client, GROUP, a, "absent", port=80, delay=0.5, sleep=client.slept.append
    )
    assert changed and a not in _listed(group)
    assert client.slept == [0.5] * 3  # one wait after each of the three draining reads


def test_a_target_that_never_drains_fails_in_one_line(elbv2: Any) -> None:
    a, _ = elbv2.ids
    change_registration(elbv2, GROUP, a, "present", port=80)
    client = _Draining(elbv2, a, reads=10_000)
    ticks = iter(range(100))
    with pytest.raises(
        TargetWaitError, match=r"still draining after 5 s \(waiting until it has drained\)"
    ):
        change_registration(
            client, GROUP, a, "absent", port=80, timeout=5, sleep=lambda _: None,
            clock=lambda: float(next(ticks)),
        )  # fmt: skip
