"""The prebuilt Python built on a throwaway instance (playbooks/python_builder.yml, issue 17
part 5), for real: `make test-slow` (a CPython compile, 15-25 min on 2 cores).

Its own local environment (PALPITE_ENVIRONMENT=t17, moto on port 4578, front door at
10.231.0.14, one app host at .15; the builder at the default builder index, .9),
provisioned with one instance.
The builder playbook runs alone against it, for CPython 3.11.2 from Debian's orig tarball
served by a mirror on the bridge (python.org is out of reach here, as in the pyenv compile
scenario):
1. a wrong source sha256: the run fails, no builder instance and no builder host are left,
   nothing is published;
2. the real build: the builder bound to its own pool's address, the package, its sha256
   and signature in the bucket, signed by the checkout's key; the builder is terminated and
   its host stopped;
3. the app host installs that package (tests/slow/install.yml: the pyenv role as configure
   runs it, the signature checked on the host before the download), compiling nothing;
4. a builder an interrupted run left is terminated by the next run, which launches nothing;
5. a re-run launches nothing and changes nothing;
6. teardown leaves nothing.
Its own environment, front door and app address so that it runs beside a demo; the
builder's .9 is the default environment's too (a demo builds only when its seeded package
is missing, so the two builders do not meet in practice).
"""

import hashlib
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import boto3
import pytest

from ml.signing_core import public_key_from_pem, verify_signed_manifest
from tests.local.environment import changed_per_host, local_env

pytestmark = pytest.mark.testbed

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TESTBED = REPO / "tests/testbed/testbed"
SERVICES = REPO / "tests/molecule/services.sh"
ENVIRONMENT = "t17"
PREFIX = f"palpite-{ENVIRONMENT}"
MOTO_PORT = 4578
GIT_PORT = 9478
HTTP_PORT = 8478
FRONT_DOOR_INDEX = 14
APP_INDEX = 15
BUILDER_INDEX = 9  # the default, local_cloud_builder_indices
ENDPOINT = f"http://10.231.0.1:{MOTO_PORT}"
RUNDIR = REPO / ".local-env" / f"services-{ENVIRONMENT}"
CACHE = Path(os.environ.get("PALPITE_CACHE_DIR") or "/var/cache/palpite")
SOURCE = "python3.11_3.11.2.orig.tar.gz"
SOURCE_URL = f"http://deb.debian.org/debian/pool/main/p/python3.11/{SOURCE}"
SOURCE_SHA256 = "2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849"
KEY = "python/debian-12-x86_64/cpython-3.11.2.tar.zst"
BUILDER_HOST = f"{PREFIX}-python-builder-{BUILDER_INDEX}"


def _env() -> dict[str, str]:
    return local_env(ENVIRONMENT, MOTO_PORT, FRONT_DOOR_INDEX, [APP_INDEX])


def _playbook(path: str, *args: str, timeout: int = 3600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "ansible-playbook"), path, "-e", "instance_count=1", *args],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _pyenv_args(sha256: str = SOURCE_SHA256) -> list[str]:
    return [
        "-e",
        f"pyenv_git_url=git://10.231.0.1:{GIT_PORT}/pyenv.git",
        # A checkout of its own: another local environment may update the shared one meanwhile.
        "-e",
        f"pyenv_controller_cache_dir={REPO / '.cache' / 'test-slow-pyenv'}",
        "-e",
        "pyenv_python_version=3.11.2",
        "-e",
        f"pyenv_python_source_url=http://10.231.0.1:{HTTP_PORT}/sources/{SOURCE}",
        "-e",
        f"pyenv_python_source_sha256={sha256}",
    ]


def _builder(sha256: str = SOURCE_SHA256) -> subprocess.CompletedProcess:
    return _playbook("playbooks/python_builder.yml", *_pyenv_args(sha256))


def _out(proc: subprocess.CompletedProcess) -> str:
    return proc.stdout[-8000:] + proc.stderr[-3000:]


def _client(service: str):
    return boto3.client(
        service,
        region_name="us-east-1",
        endpoint_url=ENDPOINT,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _builders(states: tuple[str, ...] = ("pending", "running", "stopping", "stopped")) -> list:
    reservations = _client("ec2").describe_instances(
        Filters=[
            {"Name": "tag:Environment", "Values": [ENVIRONMENT]},
            {"Name": "tag:Role", "Values": ["python-builder"]},
            {"Name": "instance-state-name", "Values": list(states)},
        ]
    )["Reservations"]
    return [i for r in reservations for i in r["Instances"]]


def _testbed_hosts() -> dict[str, list[str]]:
    out = subprocess.run([str(TESTBED), "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}


def _running(name: str) -> bool:
    return _testbed_hosts().get(name, ["", "", "", ""])[3] == "running"


def _bucket() -> str:
    [name] = [
        b["Name"] for b in _client("s3").list_buckets()["Buckets"] if b["Name"].startswith(PREFIX)
    ]
    return name


def _python_keys() -> list[str]:
    listed = _client("s3").list_objects_v2(Bucket=_bucket(), Prefix="python/")
    return sorted(o["Key"] for o in listed.get("Contents", []))


def _services(step: str) -> None:
    for name, port in (("git", GIT_PORT), ("http", HTTP_PORT)):
        subprocess.run([str(SERVICES), name, step, str(port), str(RUNDIR)], check=True)


def _teardown() -> subprocess.CompletedProcess:
    return _playbook("playbooks/teardown.yml", "-e", f"teardown_confirm={PREFIX}")


def _leftovers() -> bool:
    return (REPO / ".local-env" / PREFIX / "moto.pid").exists() or any(
        h.startswith(f"{PREFIX}-") for h in _testbed_hosts()
    )


def _fetch_source() -> None:
    dest = CACHE / "mirror" / "sources" / SOURCE
    if dest.exists() and hashlib.sha256(dest.read_bytes()).hexdigest() == SOURCE_SHA256:
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".part")
    with urllib.request.urlopen(SOURCE_URL, timeout=120) as resp:
        tmp.write_bytes(resp.read())
    assert hashlib.sha256(tmp.read_bytes()).hexdigest() == SOURCE_SHA256
    tmp.rename(dest)


@pytest.fixture(scope="module")
def environment() -> dict:
    if os.geteuid() != 0:
        pytest.skip("the testbed needs root")
    if _leftovers():  # of an interrupted run
        down = _teardown()
        assert down.returncode == 0, _out(down)
    _fetch_source()
    provision = _playbook("playbooks/provision.yml")
    try:
        assert provision.returncode == 0, _out(provision)
        assert _python_keys() == []  # a bucket of its own, empty
        _services("start")
        yield {}
    finally:
        _services("stop")
        if _leftovers():
            down = _teardown()
            assert down.returncode == 0, _out(down)


def test_a_failed_build_leaves_no_builder_and_publishes_nothing(environment: dict) -> None:
    proc = _builder(sha256="0" * 64)
    assert proc.returncode != 0, _out(proc)
    assert "building the prebuilt Python on i-" in proc.stdout, _out(proc)
    assert "the builder is terminated, nothing was published" in proc.stdout
    assert _builders() == []
    assert len(_builders(("terminated", "shutting-down"))) == 1
    assert not _running(BUILDER_HOST)
    assert _python_keys() == []


def test_the_builder_compiles_and_the_controller_signs_and_publishes(environment: dict) -> None:
    proc = _builder()
    assert proc.returncode == 0, _out(proc)
    assert _python_keys() == [KEY, f"{KEY}.sha256", f"{KEY}.sha256.sig"]
    # Signed by this checkout's key (the controller's), as hosts check it; the archive
    # matches the signed sha256.
    s3 = _client("s3")
    manifest, signature, archive = (
        s3.get_object(Bucket=_bucket(), Key=KEY + suffix)["Body"].read()
        for suffix in (".sha256", ".sha256.sig", "")
    )
    public = REPO / ".signing" / "signing.key.pub"
    trusted = [public_key_from_pem(public.read_bytes(), str(public))]
    sha256, _ = verify_signed_manifest(
        manifest, signature, trusted, kind="python-archive", file_name=Path(KEY).name
    )
    assert hashlib.sha256(archive).hexdigest() == sha256
    assert _builders() == []
    assert not _running(BUILDER_HOST)
    # It ran on its own pool's address (the tag stays on the terminated instance).
    built = max(_builders(("terminated", "shutting-down")), key=lambda i: i["LaunchTime"])
    tags = {t["Key"]: t["Value"] for t in built["Tags"]}
    assert tags["palpite:local-address"] == f"10.231.0.{BUILDER_INDEX}"
    assert "IamInstanceProfile" not in built


def test_the_app_host_installs_the_signed_package(environment: dict) -> None:
    proc = _playbook("tests/slow/install.yml", *_pyenv_args())
    assert proc.returncode == 0, _out(proc)
    assert "Check that it came from the bucket, not a compile" in proc.stdout


def test_a_leftover_builder_is_terminated_and_nothing_is_launched(environment: dict) -> None:
    ec2 = _client("ec2")
    image = ec2.describe_images()["Images"][0]["ImageId"]
    tags = {"Project": "palpite", "Environment": ENVIRONMENT, "Role": "python-builder"}
    [leftover] = ec2.run_instances(
        ImageId=image,
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        ],
    )["Instances"]
    launched_before = len(_builders(("terminated", "shutting-down")))
    proc = _builder()
    assert proc.returncode == 0, _out(proc)
    assert _builders() == []
    terminated = _builders(("terminated", "shutting-down"))
    assert leftover["InstanceId"] in [i["InstanceId"] for i in terminated]
    assert len(terminated) == launched_before + 1  # the leftover, nothing launched


def test_a_rerun_launches_and_changes_nothing(environment: dict) -> None:
    terminated_before = len(_builders(("terminated", "shutting-down")))
    proc = _builder()
    assert proc.returncode == 0, _out(proc)
    assert set(changed_per_host(proc).values()) == {0}, changed_per_host(proc)
    assert len(_builders(("terminated", "shutting-down"))) == terminated_before
    assert not _running(BUILDER_HOST)


def test_teardown_leaves_nothing(environment: dict) -> None:
    down = _teardown()
    assert down.returncode == 0, _out(down)
    assert not _leftovers()
