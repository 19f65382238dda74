"""playbooks/provision.yml and teardown.yml against moto: inputs, idempotence, every
security property, teardown of exactly what the project owns.

The tests in this module share one moto state and run in file order: bad inputs (nothing
created), provision twice, properties, teardown twice.
"""

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ACCOUNT, BIN, PREFIX, PROJECT, REPO, SSH_CIDR, Cloud

# A real moto server and some ten ansible-playbook runs: minutes, not seconds.
# One worker runs the whole module (make unit: --dist loadfile): its tests share one
# provisioned cloud in order (scaling down, then teardown). Split over two workers, each
# provisioned its own (a minute each) under the same bucket name, and one worker's
# provisioning wrote the bucket's signing record in the checkout's .signing/ between the
# other's two teardowns, so the second "changed" (seen with -n 2 on tests/aws alone).
pytestmark = pytest.mark.slow

BUCKET = f"{PREFIX}-artifacts-{ACCOUNT}"
TAGS = {"Project": PROJECT, "Environment": "test"}
TIMES_FILE = REPO / ".cache" / "bench" / "provision-moto.json"


def _tags(resource: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def _project_filters() -> list[dict]:
    return [{"Name": f"tag:{k}", "Values": [v]} for k, v in TAGS.items()]


def _running_instances(cloud: Cloud, filters: list[dict]) -> list[dict]:
    pages = cloud.client("ec2").describe_instances(
        Filters=[*filters, {"Name": "instance-state-name", "Values": ["pending", "running"]}]
    )
    return [i for r in pages["Reservations"] for i in r["Instances"]]


def _nothing_of_ours(cloud: Cloud) -> dict[str, list]:
    """Every live resource carrying the project's tags (or names), by kind; all empty = clean."""
    ec2, f = cloud.client("ec2"), _project_filters()
    elb, iam, s3 = cloud.client("elbv2"), cloud.client("iam"), cloud.client("s3")
    return {
        "instances": [i["InstanceId"] for i in _running_instances(cloud, f)],
        "vpcs": [v["VpcId"] for v in ec2.describe_vpcs(Filters=f)["Vpcs"]],
        "subnets": [s["SubnetId"] for s in ec2.describe_subnets(Filters=f)["Subnets"]],
        "security_groups": [
            g["GroupId"] for g in ec2.describe_security_groups(Filters=f)["SecurityGroups"]
        ],
        "internet_gateways": [
            g["InternetGatewayId"]
            for g in ec2.describe_internet_gateways(Filters=f)["InternetGateways"]
        ],
        "route_tables": [
            r["RouteTableId"] for r in ec2.describe_route_tables(Filters=f)["RouteTables"]
        ],
        "volumes": [
            v["VolumeId"]
            for v in ec2.describe_volumes(Filters=f)["Volumes"]
            if v["State"] not in ("deleting", "deleted")
        ],
        "key_pairs": [k["KeyName"] for k in ec2.describe_key_pairs(Filters=f)["KeyPairs"]],
        "load_balancers": [
            lb["LoadBalancerName"]
            for lb in elb.describe_load_balancers()["LoadBalancers"]
            if lb["LoadBalancerName"].startswith(PREFIX)
        ],
        "target_groups": [
            tg["TargetGroupName"]
            for tg in elb.describe_target_groups()["TargetGroups"]
            if tg["TargetGroupName"].startswith(PREFIX)
        ],
        "buckets": [
            b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].startswith(PREFIX)
        ],
        "roles": [
            r["RoleName"] for r in iam.list_roles()["Roles"] if r["RoleName"].startswith(PREFIX)
        ],
        "instance_profiles": [
            p["InstanceProfileName"]
            for p in iam.list_instance_profiles()["InstanceProfiles"]
            if p["InstanceProfileName"].startswith(PREFIX)
        ],
    }


def _assert_clean(cloud: Cloud) -> None:
    left = {kind: ids for kind, ids in _nothing_of_ours(cloud).items() if ids}
    assert not left, f"resources of {PREFIX} left: {left}"


# --- bad inputs: each refused with its message, before anything exists -----------------

BAD_INPUTS = [
    pytest.param({}, "ssh_allowed_cidrs is required", id="ssh-cidrs-missing"),
    pytest.param(
        {"ssh_allowed_cidrs": ["0.0.0.0/0"]},
        "opens SSH to the whole internet",
        id="ssh-from-anywhere",
    ),
    pytest.param(
        {"ssh_allowed_cidrs": [SSH_CIDR], "instance_count": 0},
        "instance_count must be a whole number from 1 to 20, got '0'",
        id="instance-count-0",
    ),
    pytest.param(
        {"ssh_allowed_cidrs": [SSH_CIDR], "instance_count": -1},
        "instance_count must be a whole number from 1 to 20, got '-1'",
        id="instance-count-negative",
    ),
    pytest.param(
        {"ssh_allowed_cidrs": ["198.51.100.0/33"]},
        "malformed CIDR 198.51.100.0/33",
        id="cidr-prefix-too-long",
    ),
    pytest.param(
        {"ssh_allowed_cidrs": [SSH_CIDR], "allowed_http_cidrs": ["10.1.2.3/8"]},
        "malformed CIDR 10.1.2.3/8",
        id="cidr-host-bits-set",
    ),
    pytest.param(
        {"ssh_allowed_cidrs": [SSH_CIDR], "aws_region": "moon-base-one"},
        "aws_region 'moon-base-one' is not an AWS region name",
        id="region",
    ),
    pytest.param(
        {"ssh_allowed_cidrs": [SSH_CIDR], "instance_type": "huge"},
        "instance_type 'huge' is not an EC2 instance type",
        id="instance-type-format",
    ),
    pytest.param(
        {"ssh_allowed_cidrs": [SSH_CIDR]},
        "allowed_http_cidrs opens the service to 0.0.0.0/0 over plain HTTP"
        " (no alb_certificate_arn). Either give the load balancer a certificate: a domain"
        " name you own (an ALB's own"
        " amazonaws.com name cannot get one) with an ACM certificate in us-east-1, set as"
        " alb_certificate_arn; or keep allowed_http_cidrs to private networks; or set"
        " allow_plain_http=true to accept plain HTTP.",
        id="plain-http-open-to-the-internet",
    ),
    pytest.param(
        {"ssh_allowed_cidrs": [SSH_CIDR], "allowed_http_cidrs": ["10.0.0.0/8", "52.0.0.0/8"]},
        "allowed_http_cidrs opens the service to 52.0.0.0/8 over plain HTTP",
        id="plain-http-open-to-a-public-network",
    ),
    pytest.param(
        {"ssh_allowed_cidrs": [SSH_CIDR], "instance_type": "t3.gigantic", "allow_plain_http": True},
        "instance type t3.gigantic does not exist in us-east-1",
        id="instance-type-unknown",
    ),
]


@pytest.mark.parametrize(("extra", "message"), BAD_INPUTS)
def test_bad_input_is_refused_before_anything_is_created(
    cloud: Cloud, extra: dict, message: str
) -> None:
    run = cloud.playbook("provision.yml", "-e", json.dumps(extra))
    assert run.returncode != 0
    # The message can be folded over lines in the output.
    assert message in " ".join(run.output.split()), run.output[-3000:]
    _assert_clean(cloud)
    assert not cloud.key_dir.exists()


# --- provision twice --------------------------------------------------------------------


@pytest.fixture(scope="module")
def provisioned(cloud: Cloud) -> dict:
    """Decoys that must survive, then provision twice with HTTPS on the load balancer."""
    ec2 = cloud.client("ec2")
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    decoy_instance = ec2.run_instances(
        ImageId=ami,
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[
            {
                "ResourceType": "instance",
                "Tags": [
                    {"Key": "Project", "Value": PROJECT},
                    {"Key": "Environment", "Value": "other"},
                ],
            }
        ],
    )["Instances"][0]["InstanceId"]
    decoy_vpc = ec2.create_vpc(
        CidrBlock="10.99.0.0/16",
        TagSpecifications=[
            {"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": f"{PREFIX}-vpc"}]}
        ],
    )["Vpc"]["VpcId"]
    default_vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]
    decoy_sg = ec2.create_security_group(
        GroupName=f"{PREFIX}-app", Description="decoy", VpcId=default_vpc["VpcId"]
    )["GroupId"]
    cert = cloud.client("acm").request_certificate(DomainName="palpite.example.com")[
        "CertificateArn"
    ]

    # The instance role as earlier releases left it: with a read policy on the artifacts,
    # which provision removes (the role now grants nothing).
    iam = cloud.client("iam")
    iam.create_role(
        RoleName=f"{PREFIX}-app",
        AssumeRolePolicyDocument=(
            REPO / "roles/aws_artifacts/files/ec2_trust_policy.json"
        ).read_text(),
        Tags=[{"Key": k, "Value": v} for k, v in TAGS.items()],
    )
    legacy_read = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
    }
    iam.put_role_policy(
        RoleName=f"{PREFIX}-app",
        PolicyName=f"{PREFIX}-artifacts-read",
        PolicyDocument=json.dumps(legacy_read),
    )

    extra = json.dumps({"ssh_allowed_cidrs": [SSH_CIDR], "alb_certificate_arn": cert})
    first = cloud.playbook("provision.yml", "-e", extra)
    assert first.returncode == 0, first.output[-5000:]
    second = cloud.playbook("provision.yml", "-e", extra)
    assert second.returncode == 0, second.output[-5000:]
    return {
        "first": first,
        "second": second,
        "cert": cert,
        "decoys": {"instance": decoy_instance, "vpc": decoy_vpc, "sg": decoy_sg},
    }


def test_provision_creates_then_changes_nothing(provisioned: dict) -> None:
    first, second = provisioned["first"], provisioned["second"]
    assert first.recap["changed"] > 0
    assert first.recap["failed"] == 0
    assert second.recap["changed"] == 0, second.output[-5000:]
    assert second.recap["failed"] == 0
    TIMES_FILE.parent.mkdir(parents=True, exist_ok=True)
    TIMES_FILE.write_text(
        json.dumps(
            {
                "provision_first_s": round(first.seconds, 1),
                "provision_first_cpu_s": round(first.cpu_seconds, 1),
                "provision_rerun_s": round(second.seconds, 1),
                "provision_rerun_cpu_s": round(second.cpu_seconds, 1),
                "load_average": os.getloadavg()[0],
            }
        )
    )


def test_host_keys_are_accepted_on_first_use_when_the_console_holds_none(
    cloud: Cloud, provisioned: dict
) -> None:
    # moto's console output is a fixed kernel log with no SSH HOST KEY block: provision
    # pins nothing and says so (tests/unit/test_host_keys.py parses a real-format block).
    known_hosts = cloud.key_dir / f"{PREFIX}.known_hosts"
    assert known_hosts.exists()
    assert known_hosts.read_text() == ""
    assert known_hosts.stat().st_mode & 0o777 == 0o600
    output = " ".join(provisioned["first"].output.split())
    assert "SSH host keys pinned now: none; accepted on first use" in output, output[-3000:]
    instances = [i["InstanceId"] for i in _running_instances(cloud, _project_filters())]
    assert all(i in output for i in instances)


def _groups(cloud: Cloud) -> dict[str, dict]:
    groups = cloud.client("ec2").describe_security_groups(Filters=_project_filters())[
        "SecurityGroups"
    ]
    return {g["GroupName"]: g for g in groups}


def test_security_groups_allow_ssh_only_from_the_given_cidrs_and_http_only_via_the_alb(
    cloud: Cloud, provisioned: dict
) -> None:
    groups = _groups(cloud)
    assert set(groups) == {f"{PREFIX}-app", f"{PREFIX}-alb"}
    app, alb = groups[f"{PREFIX}-app"], groups[f"{PREFIX}-alb"]

    rules = {(p["IpProtocol"], p.get("FromPort"), p.get("ToPort")): p for p in app["IpPermissions"]}
    assert set(rules) == {("tcp", 22, 22), ("tcp", 80, 80)}
    ssh = rules[("tcp", 22, 22)]
    assert [r["CidrIp"] for r in ssh["IpRanges"]] == [SSH_CIDR]
    assert not ssh.get("Ipv6Ranges") and not ssh.get("UserIdGroupPairs")
    http = rules[("tcp", 80, 80)]
    assert [p["GroupId"] for p in http["UserIdGroupPairs"]] == [alb["GroupId"]]
    assert not http.get("IpRanges") and not http.get("Ipv6Ranges")

    alb_rules = {(p["IpProtocol"], p.get("FromPort")): p for p in alb["IpPermissions"]}
    assert set(alb_rules) == {("tcp", 80), ("tcp", 443)}
    for rule in alb_rules.values():
        assert [r["CidrIp"] for r in rule["IpRanges"]] == ["0.0.0.0/0"]
    vpc_cidr = cloud.client("ec2").describe_vpcs(VpcIds=[alb["VpcId"]])["Vpcs"][0]["CidrBlock"]
    assert [
        (p["IpProtocol"], p.get("FromPort"), [r["CidrIp"] for r in p["IpRanges"]])
        for p in alb["IpPermissionsEgress"]
    ] == [("tcp", 80, [vpc_cidr])]

    # No rule of ours anywhere lets SSH in from everywhere.
    for group in groups.values():
        for p in group["IpPermissions"]:
            if p["IpProtocol"] in ("-1", "tcp") and p.get("FromPort", 0) <= 22 <= p.get(
                "ToPort", 65535
            ):
                assert "0.0.0.0/0" not in [r["CidrIp"] for r in p.get("IpRanges", [])]
                assert "::/0" not in [r["CidrIpv6"] for r in p.get("Ipv6Ranges", [])]


def test_bucket_is_versioned_encrypted_private_and_tls_only(
    cloud: Cloud, provisioned: dict
) -> None:
    s3 = cloud.client("s3")
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    rules = s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"]
    assert [r["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] for r in rules] == ["AES256"]
    block = s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"]
    assert block == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    ownership = s3.get_bucket_ownership_controls(Bucket=BUCKET)["OwnershipControls"]["Rules"]
    assert ownership == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    policy = json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])
    [deny] = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
    assert deny["Principal"] == "*"
    assert deny["Action"] in ("s3:*", ["s3:*"])
    assert sorted(deny["Resource"]) == [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert not [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=BUCKET)["TagSet"]}
    assert tags.items() >= TAGS.items()


def test_instance_role_holds_no_permissions(cloud: Cloud, provisioned: dict) -> None:
    # Nothing on a host uses AWS credentials: downloads go through presigned URLs made on
    # the controller (docs/trust.md, "Host credentials"). The role and its instance profile
    # stay, so later work adds statements without replacing instances.
    iam = cloud.client("iam")
    role = iam.get_role(RoleName=f"{PREFIX}-app")["Role"]
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert [s["Principal"] for s in trust["Statement"]] == [{"Service": "ec2.amazonaws.com"}]
    assert _tags(role).items() >= TAGS.items()
    assert iam.list_attached_role_policies(RoleName=f"{PREFIX}-app")["AttachedPolicies"] == []
    # Including the read policy an earlier release left (created by the fixture).
    assert iam.list_role_policies(RoleName=f"{PREFIX}-app")["PolicyNames"] == []
    assert "no permissions" in role["Description"]

    profile = iam.get_instance_profile(InstanceProfileName=f"{PREFIX}-app")["InstanceProfile"]
    assert [r["RoleName"] for r in profile["Roles"]] == [f"{PREFIX}-app"]


def test_instances_require_imdsv2_have_encrypted_gp3_roots_and_tags(
    cloud: Cloud, provisioned: dict
) -> None:
    ec2 = cloud.client("ec2")
    instances = _running_instances(cloud, _project_filters())
    assert len(instances) == 2
    assert len({i["SubnetId"] for i in instances}) == 2
    assert len({i["Placement"]["AvailabilityZone"] for i in instances}) == 2
    app_sg = _groups(cloud)[f"{PREFIX}-app"]["GroupId"]
    images = {i["ImageId"] for i in instances}
    names = [im["Name"] for im in ec2.describe_images(ImageIds=list(images))["Images"]]
    assert names and all(n.startswith("al2023-ami-2023.") and n.endswith("-x86_64") for n in names)
    for inst in instances:
        assert inst["InstanceType"] == "t3.small"
        assert inst["MetadataOptions"]["HttpTokens"] == "required"
        assert inst["MetadataOptions"]["HttpEndpoint"] == "enabled"
        assert inst["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
        assert inst["KeyName"] == PREFIX
        assert inst["IamInstanceProfile"]["Arn"].endswith(f":instance-profile/{PREFIX}-app")
        assert [g["GroupId"] for g in inst["SecurityGroups"]] == [app_sg]
        tags = _tags(inst)
        assert tags.items() >= {**TAGS, "Role": "app", "Name": f"{PREFIX}-app"}.items()
        volume_ids = [b["Ebs"]["VolumeId"] for b in inst["BlockDeviceMappings"]]
        volumes = ec2.describe_volumes(VolumeIds=volume_ids)["Volumes"]
        assert volumes and all(v["Encrypted"] and v["VolumeType"] == "gp3" for v in volumes)


def test_key_pair_is_ed25519_and_the_private_key_stays_private(
    cloud: Cloud, provisioned: dict
) -> None:
    key = cloud.key_dir / f"{PREFIX}.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(cloud.key_dir.stat().st_mode) == 0o700
    private = key.read_text()
    assert private.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert Path(f"{key}.pub").read_text().startswith("ssh-ed25519 ")
    body = "".join(private.strip().splitlines()[1:-1])
    for output in cloud.outputs:
        assert "PRIVATE KEY" not in output
        assert body[:40] not in output
    pairs = cloud.client("ec2").describe_key_pairs(KeyNames=[PREFIX])["KeyPairs"]
    assert len(pairs) == 1 and _tags(pairs[0]).items() >= TAGS.items()


def test_load_balancer_serves_https_redirects_http_and_checks_health_ready(
    cloud: Cloud, provisioned: dict
) -> None:
    elb = cloud.client("elbv2")
    [lb] = elb.describe_load_balancers(Names=[f"{PREFIX}-alb"])["LoadBalancers"]
    assert lb["Scheme"] == "internet-facing"
    assert len(lb["AvailabilityZones"]) == 2
    assert lb["SecurityGroups"] == [_groups(cloud)[f"{PREFIX}-alb"]["GroupId"]]
    [tg] = elb.describe_target_groups(Names=[f"{PREFIX}-app"])["TargetGroups"]
    assert tg["HealthCheckPath"] == "/health/ready"
    assert (tg["Protocol"], tg["Port"], tg["TargetType"]) == ("HTTP", 80, "instance")
    listeners = {
        li["Port"]: li
        for li in elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
    }
    assert set(listeners) == {80, 443}
    https = listeners[443]
    assert https["Protocol"] == "HTTPS"
    assert [c["CertificateArn"] for c in https["Certificates"]] == [provisioned["cert"]]
    assert https["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert [(a["Type"], a["TargetGroupArn"]) for a in https["DefaultActions"]] == [
        ("forward", tg["TargetGroupArn"])
    ]
    [redirect] = listeners[80]["DefaultActions"]
    assert redirect["Type"] == "redirect"
    assert redirect["RedirectConfig"]["Protocol"] == "HTTPS"
    assert redirect["RedirectConfig"]["Port"] == "443"
    assert redirect["RedirectConfig"]["StatusCode"] == "HTTP_301"
    targets = elb.describe_target_health(TargetGroupArn=tg["TargetGroupArn"])[
        "TargetHealthDescriptions"
    ]
    running = {i["InstanceId"] for i in _running_instances(cloud, _project_filters())}
    assert {t["Target"]["Id"] for t in targets} == running
    tags = elb.describe_tags(ResourceArns=[lb["LoadBalancerArn"], tg["TargetGroupArn"]])[
        "TagDescriptions"
    ]
    for desc in tags:
        assert _tags(desc).items() >= TAGS.items()


def _trusted_proxies(cloud: Cloud) -> list[str]:
    """The networks configure.yml makes the app hosts trust for X-Forwarded-For (its
    controller part only: the emulated instances' addresses are never contacted)."""
    # localhost named in an inventory so that --limit can keep the play to it alone.
    limit = ["-i", "localhost,", "--limit", "localhost", "-c", "local"]
    python = ["-e", f"ansible_python_interpreter={sys.executable}"]
    run = cloud.playbook("configure.yml", *limit, *python, "--tags", "always")
    assert run.returncode == 0, run.output[-5000:]
    m = re.search(r"app hosts trust X-Forwarded-For from: ([^'\"\n]*)", run.output)
    assert m, run.output[-3000:]
    return [] if m.group(1).startswith("nobody") else m.group(1).split(", ")


def test_app_hosts_trust_forwarded_addresses_from_the_load_balancers_subnets_only(
    cloud: Cloud, provisioned: dict
) -> None:
    # Every request reaches a host from a load balancer node, whose address is in one of its
    # subnets: trusting exactly those gives each client its own rate-limit budget.
    ec2, elb = cloud.client("ec2"), cloud.client("elbv2")
    [lb] = elb.describe_load_balancers(Names=[f"{PREFIX}-alb"])["LoadBalancers"]
    subnet_ids = [az["SubnetId"] for az in lb["AvailabilityZones"]]
    cidrs = [s["CidrBlock"] for s in ec2.describe_subnets(SubnetIds=subnet_ids)["Subnets"]]
    assert len(cidrs) == 2
    assert _trusted_proxies(cloud) == sorted(cidrs)


def _unwrap_unsafe(obj: dict) -> object:
    # ansible-inventory --list marks templated values as {"__ansible_unsafe": value}.
    return obj["__ansible_unsafe"] if set(obj) == {"__ansible_unsafe"} else obj


def test_inventory_groups_the_instances_by_role(cloud: Cloud, provisioned: dict) -> None:
    proc = subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", str(REPO / "inventory/aws"), "--list"],
        cwd=REPO,
        env=cloud.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    inv = json.loads(proc.stdout, object_hook=_unwrap_unsafe)
    instances = {i["InstanceId"]: i for i in _running_instances(cloud, _project_filters())}
    assert sorted(inv["app"]["hosts"]) == sorted(instances)
    for host, inst in instances.items():
        hostvars = inv["_meta"]["hostvars"][host]
        assert hostvars["ansible_host"] == inst["PublicIpAddress"]
        assert hostvars["ansible_user"] == "ec2-user"
    # The decoy of another environment is not in this environment's inventory.
    assert provisioned["decoys"]["instance"] not in json.dumps(inv)


def test_scaling_down_to_one_instance_removes_the_load_balancer(
    cloud: Cloud, provisioned: dict
) -> None:
    before = {i["InstanceId"]: i for i in _running_instances(cloud, _project_filters())}
    run = cloud.playbook(
        "provision.yml",
        "-e",
        json.dumps(
            {"ssh_allowed_cidrs": [SSH_CIDR], "instance_count": 1, "allow_plain_http": True}
        ),
    )
    assert run.returncode == 0, run.output[-5000:]
    after = _running_instances(cloud, _project_filters())
    assert len(after) == 1
    assert after[0]["InstanceId"] in before  # one of the two kept, not a new one
    elb = cloud.client("elbv2")
    assert not [
        lb
        for lb in elb.describe_load_balancers()["LoadBalancers"]
        if lb["LoadBalancerName"].startswith(PREFIX)
    ]
    assert not [
        tg
        for tg in elb.describe_target_groups()["TargetGroups"]
        if tg["TargetGroupName"].startswith(PREFIX)
    ]
    # Without a load balancer the instance takes HTTP from the allowed networks itself.
    app = _groups(cloud)[f"{PREFIX}-app"]
    [http] = [p for p in app["IpPermissions"] if p.get("FromPort") == 80]
    assert [r["CidrIp"] for r in http["IpRanges"]] == ["0.0.0.0/0"]
    assert not http.get("UserIdGroupPairs")
    # Clients then reach the instance directly: no forwarded address is trusted.
    assert _trusted_proxies(cloud) == []


# --- teardown ----------------------------------------------------------------------------


def test_teardown_needs_the_confirmation(cloud: Cloud, provisioned: dict) -> None:
    before = _nothing_of_ours(cloud)
    run = cloud.playbook("teardown.yml")
    assert run.returncode != 0
    assert f"-e teardown_confirm={PREFIX}" in " ".join(run.output.split())
    run = cloud.playbook("teardown.yml", "-e", "teardown_confirm=palpite-prod")
    assert run.returncode != 0
    assert _nothing_of_ours(cloud) == before


def test_teardown_deletes_exactly_what_the_project_owns_and_is_idempotent(
    cloud: Cloud, provisioned: dict
) -> None:
    # A throwaway Python builder an interrupted configure left (playbooks/python_builder.yml).
    ec2 = cloud.client("ec2")
    [app] = _running_instances(
        cloud, [*_project_filters(), {"Name": "tag:Role", "Values": ["app"]}]
    )[:1]
    [builder] = ec2.run_instances(
        ImageId=app["ImageId"],
        MinCount=1,
        MaxCount=1,
        SubnetId=app["SubnetId"],
        TagSpecifications=[
            {
                "ResourceType": "instance",
                "Tags": [
                    {"Key": k, "Value": v} for k, v in {**TAGS, "Role": "python-builder"}.items()
                ],
            }
        ],
    )["Instances"]

    first = cloud.playbook("teardown.yml", "-e", f"teardown_confirm={PREFIX}")
    assert first.returncode == 0, first.output[-5000:]
    assert first.recap["changed"] > 0
    _assert_clean(cloud)
    [gone] = ec2.describe_instances(InstanceIds=[builder["InstanceId"]])["Reservations"][0][
        "Instances"
    ]
    assert gone["State"]["Name"] == "terminated"
    tagging = cloud.client("resourcegroupstaggingapi").get_resources(
        TagFilters=[{"Key": k, "Values": [v]} for k, v in TAGS.items()]
    )["ResourceTagMappingList"]
    live = [
        r["ResourceARN"]
        for r in tagging
        if ":instance/" not in r["ResourceARN"]  # terminated instances stay listed for a while
    ]
    assert live == []
    assert not (cloud.key_dir / f"{PREFIX}.pem").exists()

    decoys = provisioned["decoys"]
    assert [i["InstanceId"] for i in _running_instances(cloud, [])] == [decoys["instance"]]
    assert ec2.describe_vpcs(VpcIds=[decoys["vpc"]])["Vpcs"]
    assert ec2.describe_security_groups(GroupIds=[decoys["sg"]])["SecurityGroups"]

    second = cloud.playbook("teardown.yml", "-e", f"teardown_confirm={PREFIX}")
    assert second.returncode == 0, second.output[-5000:]
    assert second.recap["changed"] == 0, second.output[-5000:]
    times = json.loads(TIMES_FILE.read_text()) if TIMES_FILE.exists() else {}
    times.update(
        teardown_s=round(first.seconds, 1),
        teardown_cpu_s=round(first.cpu_seconds, 1),
        teardown_rerun_s=round(second.seconds, 1),
        teardown_rerun_cpu_s=round(second.cpu_seconds, 1),
    )
    TIMES_FILE.parent.mkdir(parents=True, exist_ok=True)
    TIMES_FILE.write_text(json.dumps(times))
