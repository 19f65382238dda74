"""The hosts' signature check, plugins/modules/palpite_artifact_verify.py, run by Ansible as on
a host: with the OS's Python and its python3-cryptography (/usr/bin/python3 here, Debian's
like the testbed's; PALPITE_TEST_HOST_PYTHON names another, e.g. a Python 3.9 with
cryptography 36 as on Amazon Linux 2023), the module_utils link to ml/signing_core.py
shipped with it."""

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ml.signing import generate_key, load_signer, sign_manifest_bytes

REPO = Path(__file__).resolve().parents[2]
HOST_PYTHON = Path(os.environ.get("PALPITE_TEST_HOST_PYTHON", "/usr/bin/python3"))
NAME = "palpite-app-1.0-abc.tar.gz"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _host_python() -> str:
    probe = subprocess.run([HOST_PYTHON, "-c", "import cryptography"], check=False)
    if not HOST_PYTHON.exists() or probe.returncode != 0:
        pytest.skip("no OS python3 with python3-cryptography")
    return str(HOST_PYTHON)


def test_the_module_verifies_as_a_host_does(tmp_path: Path) -> None:
    keys = {}
    for name in ("old", "new", "other"):
        generate_key(tmp_path / name)
        keys[name] = load_signer(tmp_path / name)
    trusted = tmp_path / "trusted-keys"
    trusted.mkdir()
    for name in ("old", "new"):  # rotation: two trusted keys
        shutil.copy(tmp_path / f"{name}.pub", trusted / f"{name}.pem")
    archive = b"the release\n"
    manifest = f"{hashlib.sha256(archive).hexdigest()}  {NAME}\n".encode()
    tampered = f"{hashlib.sha256(b'evil').hexdigest()}  {NAME}\n".encode()

    def sig(key: str, data: bytes = manifest, kind: str = "app-release") -> str:
        return _b64(sign_manifest_bytes(data, keys[key], kind=kind, name=NAME))

    cases = {
        "old key": (manifest, sig("old")),
        "new key": (manifest, sig("new")),
        "unsigned": (manifest, ""),
        "another key": (manifest, sig("other")),
        "tampered, rehashed": (tampered, sig("old")),
        "another kind": (manifest, sig("old", kind="python-archive")),
    }
    tasks = [
        {"name": case, "palpite_artifact_verify": {
            "manifest_b64": _b64(data), "signature_b64": signature, "kind": "app-release",
            "name": NAME, "trusted_keys_dir": str(trusted)},
         "register": "result", "ignore_errors": True}
        for case, (data, signature) in cases.items()
    ]  # fmt: skip
    play = [{"hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": []}]
    for task in tasks:
        play[0]["tasks"] += [
            task,
            {
                "ansible.builtin.set_fact": {
                    "results": "{{ results | default({}) | combine({'"
                    + task["name"]
                    + "': result}) }}"
                }
            },
        ]
    play[0]["tasks"].append({"ansible.builtin.copy": {
        "content": "{{ results | to_json }}", "dest": str(tmp_path / "results.json"),
        "mode": "0644"}})  # fmt: skip
    (tmp_path / "play.yml").write_text(json.dumps(play))
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    run = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,",
         str(tmp_path / "play.yml"), "-e", f"ansible_python_interpreter={_host_python()}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())

    sha = hashlib.sha256(archive).hexdigest()
    for case, key in (("old key", "old"), ("new key", "new")):
        assert not results[case].get("failed"), results[case]
        assert results[case]["sha256"] == sha
        assert results[case]["key_id"] == keys[key].public_key.key_id
    # The trusted keys in file-name order: new.pem, old.pem.
    ids = f"trusted key ids: {keys['new'].public_key.key_id}, {keys['old'].public_key.key_id}"
    refusals = {
        "unsigned": f"unsigned (no {NAME}.sha256.sig)",
        "another key": f"signed by key {keys['other'].public_key.key_id}, which is not trusted",
        "tampered, rehashed": f"{NAME}.sha256 changed after signing",
        "another kind": "the signature is for kind python-archive, not app-release",
    }
    for case, what in refusals.items():
        message = results[case]["msg"]
        assert results[case]["failed"], case
        assert message.startswith(f"app-release {NAME}: signature check failed: {what}"), message
        assert message.endswith(ids) and "\n" not in message
