"""Static checks of the operator's IAM policy (inventory/aws/operator-policy.json).

tests/aws proves the policy grants what provision and teardown need, but moto ignores
Conditions and resource scoping: what the policy refuses is asserted here, on the document.
"""

import fnmatch
import json
import warnings
from pathlib import Path

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # parliament imports the deprecated pkg_resources
    from parliament import analyze_policy_string, enhance_finding

POLICY_FILE = Path(__file__).resolve().parents[2] / "inventory/aws/operator-policy.json"
PROJECT_TAG = {"StringEquals": {"aws:ResourceTag/Project": "palpite"}}

# Removals AWS cannot scope by resource tag: S3 bucket and object actions (no
# aws:ResourceTag for them) are scoped by the bucket name; ELB listeners and rules are not
# tagged by amazon.aws.elb_application_lb, so they are scoped by their load balancer's name.
NAME_SCOPED_REMOVALS = {
    "ArtifactBucket": ["arn:aws:s3:::palpite-*", "arn:aws:s3:::palpite-*/*"],
    "LoadBalancerListenersOfTheProjectsBalancers": [
        "arn:aws:elasticloadbalancing:*:*:listener/app/palpite-*/*/*",
        "arn:aws:elasticloadbalancing:*:*:listener-rule/app/palpite-*/*/*/*",
        "arn:aws:elasticloadbalancing:*:*:listener/net/palpite-*/*/*",
        "arn:aws:elasticloadbalancing:*:*:listener-rule/net/palpite-*/*/*/*",
    ],
}
APP_ROLE = "arn:aws:iam::*:role/palpite-*-app"
APP_PROFILE = "arn:aws:iam::*:instance-profile/palpite-*-app"
# IAM actions that would let the operator give a role (or itself) more than it has.
ESCALATING = (
    "iam:PutRolePolicy",  # the app role holds no policy (docs/trust.md, host credentials)
    "iam:AttachRolePolicy",
    "iam:AttachUserPolicy",
    "iam:AttachGroupPolicy",
    "iam:PutUserPolicy",
    "iam:PutGroupPolicy",
    "iam:CreatePolicy",
    "iam:CreatePolicyVersion",
    "iam:SetDefaultPolicyVersion",
    "iam:PutRolePermissionsBoundary",
    "iam:DeleteRolePermissionsBoundary",
    "iam:CreateUser",
    "iam:CreateAccessKey",
    "iam:CreateLoginProfile",
    "iam:UpdateLoginProfile",
)


def _listify(value: str | list[str]) -> list[str]:
    return value if isinstance(value, list) else [value]


@pytest.fixture(scope="module")
def statements() -> list[dict]:
    policy = json.loads(POLICY_FILE.read_text())
    assert all(s["Effect"] == "Allow" for s in policy["Statement"])
    return policy["Statement"]


def _granting(statements: list[dict], action: str) -> list[dict]:
    return [
        s
        for s in statements
        if any(fnmatch.fnmatchcase(action, pattern) for pattern in _listify(s["Action"]))
    ]


def test_parliament_finds_only_resource_star_where_no_narrower_resource_exists() -> None:
    # RESOURCE_STAR (LOW) is parliament's "Resource * where the action supports ARNs": the
    # Describe calls and the creations (whose ARNs do not exist yet) need it, and the
    # removals on "*" are narrowed by their Project tag condition instead. Anything else,
    # at any severity, fails.
    policy = analyze_policy_string(POLICY_FILE.read_text())
    findings = []
    for finding in policy.findings:
        enhance_finding(finding)
        findings.append((finding.severity, finding.issue))
    assert findings, "parliament ran no checks"
    assert {issue for _, issue in findings} == {"RESOURCE_STAR"}, findings
    assert {severity for severity, _ in findings} == {"LOW"}, findings


def test_every_delete_and_terminate_is_scoped_to_the_projects_tag_or_name(
    statements: list[dict],
) -> None:
    removals = [
        s
        for s in statements
        if any(a.split(":")[1].startswith(("Delete", "Terminate")) for a in _listify(s["Action"]))
    ]
    assert len(removals) >= 5
    for s in removals:
        if s["Sid"] in NAME_SCOPED_REMOVALS:
            assert "Condition" not in s or s["Condition"] == PROJECT_TAG
            assert _listify(s["Resource"]) == NAME_SCOPED_REMOVALS[s["Sid"]], s["Sid"]
        else:
            assert s.get("Condition") == PROJECT_TAG, s["Sid"]
            # Only removals share the tag-conditioned statements: a creation there would be
            # refused (nothing new carries a tag yet), a change would be unscoped by mistake.
            for action in _listify(s["Action"]):
                verb = action.split(":")[1]
                assert verb.startswith(
                    ("Delete", "Terminate", "Detach", "Disassociate", "Revoke", "Remove", "Untag")
                ), (s["Sid"], action)
    for action in ("ec2:TerminateInstances", "ec2:DeleteVpc", "iam:DeleteRole", "s3:DeleteBucket"):
        assert _granting(statements, action), action


def test_no_iam_wildcards_and_no_way_to_attach_or_write_arbitrary_policies(
    statements: list[dict],
) -> None:
    for s in statements:
        for action in _listify(s["Action"]):
            assert action != "*" and not action.startswith("iam:*"), s["Sid"]
            if action.startswith("iam:") and "*" in action:
                # Only read-only wildcards (none today) would be acceptable.
                pytest.fail(f"{s['Sid']}: IAM action wildcard {action}")
    for action in ESCALATING:
        assert not _granting(statements, action), action


def test_iam_writes_touch_only_the_app_role_and_its_instance_profile(
    statements: list[dict],
) -> None:
    for s in statements:
        writes = [
            a
            for a in _listify(s["Action"])
            if a.startswith("iam:") and not a.split(":")[1].startswith(("Get", "List"))
        ]
        if writes:
            assert set(_listify(s["Resource"])) <= {APP_ROLE, APP_PROFILE}, s["Sid"]
    [pass_role] = _granting(statements, "iam:PassRole")
    assert pass_role["Resource"] == APP_ROLE
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}
    [create] = _granting(statements, "iam:CreateRole")
    assert create["Condition"] == {"StringEquals": {"aws:RequestTag/Project": "palpite"}}
