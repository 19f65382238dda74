"""Pin EC2 instances' SSH host keys, read from their console output, per instance id."""

from __future__ import annotations

import base64
import binascii
import os
import re
import struct
import tempfile
from pathlib import Path

DOCUMENTATION = r"""
module: palpite_host_keys
short_description: Pin instances' SSH host keys from their console output into a known_hosts file
description:
  - Reads each instance's console output (C(ec2:GetConsoleOutput)), takes the host keys
    cloud-init prints between C(-----BEGIN SSH HOST KEY KEYS-----) and
    C(-----END SSH HOST KEY KEYS-----), and writes them to O(known_hosts) under the
    instance id (for C(ssh -o HostKeyAlias=<instance id>)).
  - An instance already pinned keeps its keys; console keys that differ from them fail the
    task. An instance whose console output holds no keys (not printed yet, or an image
    without cloud-init) is left out and listed in RV(unpinned); SSH then accepts its key
    on first use (StrictHostKeyChecking=accept-new).
  - Runs on the controller; credentials, region and endpoint as boto3 finds them.
options:
  instance_ids: {type: list, elements: str, required: true, description: Instances to pin.}
  known_hosts:
    {type: path, required: true, description: The project-local known_hosts file (mode 0600).}
  region: {type: str, description: AWS region; boto3's default when omitted.}
  endpoint_url: {type: str, description: Another EC2 endpoint (moto).}
"""

RETURN = r"""
pinned: {description: Instance ids whose keys were added by this run., type: list}
unpinned:
  {description: Instance ids with no keys in their console output and none pinned., type: list}
"""

BEGIN = "-----BEGIN SSH HOST KEY KEYS-----"
END = "-----END SSH HOST KEY KEYS-----"
KEY_TYPES = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
)
_KEY = re.compile(
    r"(?:^|\s)(" + "|".join(map(re.escape, KEY_TYPES)) + r") ([A-Za-z0-9+/]+={0,2})(?:\s|$)"
)
_INSTANCE_ID = re.compile(r"^i-[0-9a-f]{8,17}$")


class HostKeyError(Exception):
    """Console output or a known_hosts file that cannot be trusted as it is."""


def _valid_blob(key_type: str, blob: str) -> bool:
    try:
        raw = base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError):
        return False
    if len(raw) < 4:
        return False
    (length,) = struct.unpack(">I", raw[:4])
    return raw[4 : 4 + length] == key_type.encode()


def parse_console_host_keys(console: str) -> list[tuple[str, str]]:
    """The (type, base64) host keys of the last complete block in console output.

    Lines may carry a prefix (a timestamp, "ec2: ", "cloud-init[123]: "). An empty list
    means the output holds no complete block. A block with a key that does not decode as
    its type raises HostKeyError: a garbled console is no source to pin from.
    """
    blocks: list[list[tuple[str, str]]] = []
    current: list[tuple[str, str]] | None = None
    for line in console.splitlines():
        if BEGIN in line:
            current = []
        elif END in line:
            if current is not None:
                blocks.append(current)
            current = None
        elif current is not None:
            m = _KEY.search(line)
            if m is None:
                continue
            key_type, blob = m.groups()
            if not _valid_blob(key_type, blob):
                raise HostKeyError(f"console output holds a malformed {key_type} host key")
            if (key_type, blob) not in current:
                current.append((key_type, blob))
    return blocks[-1] if blocks else []


def read_known_hosts(text: str) -> dict[str, set[tuple[str, str]]]:
    """alias -> {(type, base64)} for the plain (unhashed) entries of a known_hosts file."""
    pinned: dict[str, set[tuple[str, str]]] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 3 or fields[0].startswith(("#", "@", "|")):
            continue
        for alias in fields[0].split(","):
            pinned.setdefault(alias, set()).add((fields[1], fields[2]))
    return pinned


def merge(
    known_hosts: str, found: dict[str, list[tuple[str, str]]]
) -> tuple[str, list[str], list[str]]:
    """Add found keys of instances not pinned yet: (new text, pinned now, left unpinned).

    Raises HostKeyError when an instance's console keys differ from its pinned keys.
    """
    pinned = read_known_hosts(known_hosts)
    lines = known_hosts.splitlines()
    added: list[str] = []
    unpinned: list[str] = []
    for instance_id in sorted(found):
        if not _INSTANCE_ID.match(instance_id):
            raise HostKeyError(f"{instance_id!r} is not an EC2 instance id")
        keys = found[instance_id]
        if instance_id in pinned:
            if keys and not set(keys) <= pinned[instance_id]:
                raise HostKeyError(
                    f"the SSH host key of {instance_id} in its console output differs from"
                    f" the one pinned for it: the instance or the console is not what was"
                    f" first seen. Check it, then remove the old key with"
                    f" ssh-keygen -R {instance_id} -f KNOWN_HOSTS"
                )
            continue
        if not keys:
            unpinned.append(instance_id)
            continue
        lines.extend(f"{instance_id} {key_type} {blob}" for key_type, blob in keys)
        added.append(instance_id)
    text = "\n".join(lines) + "\n" if lines else ""
    return text, added, unpinned


def _write_private(path: Path, text: str) -> None:
    directory = path.resolve().parent
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=directory, prefix=".known_hosts.")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        tmp.chmod(0o600)
        tmp.replace(path)
    except BaseException:
        tmp.unlink()
        raise


def main() -> None:
    from ansible.module_utils.basic import AnsibleModule

    module = AnsibleModule(
        argument_spec={
            "instance_ids": {"type": "list", "elements": "str", "required": True},
            "known_hosts": {"type": "path", "required": True},
            "region": {"type": "str"},
            "endpoint_url": {"type": "str"},
        },
        supports_check_mode=True,
    )
    import boto3
    import botocore.exceptions

    p = module.params
    ec2 = boto3.client("ec2", region_name=p["region"], endpoint_url=p["endpoint_url"] or None)
    found: dict[str, list[tuple[str, str]]] = {}
    try:
        for instance_id in p["instance_ids"]:
            output = ec2.get_console_output(InstanceId=instance_id).get("Output") or ""
            found[instance_id] = parse_console_host_keys(output)
        path = Path(p["known_hosts"])
        current = path.read_text() if path.exists() else ""
        text, added, unpinned = merge(current, found)
    except HostKeyError as e:
        module.fail_json(msg=str(e).replace("KNOWN_HOSTS", p["known_hosts"]))
    except botocore.exceptions.BotoCoreError as e:
        module.fail_json(msg=f"reading the console output failed: {e}")
    except botocore.exceptions.ClientError as e:
        module.fail_json(msg=f"reading the console output failed: {e}")
    changed = text != current or not path.exists()
    if changed and not module.check_mode:
        _write_private(path, text)
    module.exit_json(changed=changed, pinned=added, unpinned=unpinned)


if __name__ == "__main__":
    main()
