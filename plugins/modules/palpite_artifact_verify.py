"""Check an artifact's signed `.sha256` manifest against trusted keys, before any download."""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

try:  # The same code as ml.signing's (module_utils/palpite_signing_core.py links to it).
    from ansible.module_utils.palpite_signing_core import (
        KINDS,
        PublicKey,
        VerifyError,
        public_key_from_pem,
        verify_signed_manifest,
    )

    IMPORT_ERROR: ImportError | None = None
except ImportError as exc:  # python3-cryptography missing: said in the task's message
    IMPORT_ERROR = exc
    KINDS = ("model-bundle", "app-release", "python-archive")

DOCUMENTATION = r"""
module: palpite_artifact_verify
short_description: Verify an artifact's signed sha256 manifest against trusted public keys
description:
  - The signature (docs/bundle.md "Signing") over O(manifest) must name O(kind) and
    O(name), be made by one of the trusted keys and match the manifest's bytes; then the
    sha256 the manifest lists for O(name) is returned, for the download to check.
  - Runs on a host with the OS's Python and its C(python3-cryptography) package (no app
    venv needed), or on the controller. Reads and changes nothing but the key files.
  - The code is ml/signing_core.py, the same as C(python -m ml verify)'s.
options:
  manifest_b64:
    type: str
    required: true
    description: The C(.sha256) manifest's bytes, base64 (its exact bytes are signed).
  signature_b64:
    type: str
    default: ""
    description: The signature JSON (C(<manifest>.sig)), base64; empty means unsigned.
  kind:
    type: str
    required: true
    choices: [model-bundle, app-release, python-archive]
    description: The artifact's kind, part of the signed message.
  name: {type: str, required: true, description: "The archive's file name (signed name)."}
  artifact: {type: str, default: "", description: The artifact's name in messages.}
  trusted_keys_dir:
    type: path
    description: A directory of trusted public keys (PEM SubjectPublicKeyInfo, C(*.pem)).
  trusted_keys:
    type: list
    elements: path
    description: Trusted public key files (the controller's), instead of O(trusted_keys_dir).
"""

RETURN = r"""
sha256: {description: The archive's sha256 from the verified manifest., type: str}
key_id: {description: The trusted key that signed it., type: str}
trusted_key_ids: {description: Every trusted key id., type: list}
"""


def trusted_key_files(directory: str | None, files: list[str] | None) -> list[Path]:
    if files:
        return [Path(name) for name in files]
    if not directory or not Path(directory).is_dir():
        return []
    return sorted(path for path in Path(directory).glob("*.pem") if path.is_file())


def load_keys(paths: list[Path]) -> list[PublicKey]:
    keys = []
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise VerifyError(f"cannot read trusted key {path}: {exc.strerror or exc}") from None
        keys.append(public_key_from_pem(data, str(path)))
    return keys


def verify(params: dict) -> dict:
    """The check itself: returns the result, raises VerifyError with one line."""
    where = params["trusted_keys_dir"] or "the given trusted_keys"
    keys = load_keys(trusted_key_files(params["trusted_keys_dir"], params["trusted_keys"]))
    artifact = params["artifact"] or f"{params['kind']} {params['name']}"
    if not keys:
        raise VerifyError(
            f"{artifact}: signature check failed: no trusted public key in {where}"
            " (configure installs them: the artifact role's trust tasks)"
        )
    try:
        manifest = base64.b64decode(params["manifest_b64"], validate=True)
        signature = base64.b64decode(params["signature_b64"], validate=True) or None
    except (binascii.Error, ValueError):
        raise VerifyError(f"{artifact}: manifest_b64 or signature_b64 is not base64") from None
    sha256, key = verify_signed_manifest(
        manifest, signature, keys,
        kind=params["kind"], file_name=params["name"], artifact=artifact,
    )  # fmt: skip
    return {"sha256": sha256, "key_id": key.key_id, "trusted_key_ids": [k.key_id for k in keys]}


def main() -> None:
    from ansible.module_utils.basic import AnsibleModule

    module = AnsibleModule(
        argument_spec={
            "manifest_b64": {"type": "str", "required": True},
            "signature_b64": {"type": "str", "default": ""},
            "kind": {"type": "str", "required": True, "choices": list(KINDS)},
            "name": {"type": "str", "required": True},
            "artifact": {"type": "str", "default": ""},
            "trusted_keys_dir": {"type": "path"},
            "trusted_keys": {"type": "list", "elements": "path"},
        },
        required_one_of=[("trusted_keys_dir", "trusted_keys")],
        supports_check_mode=True,
    )
    if IMPORT_ERROR is not None:
        module.fail_json(
            msg=f"cannot verify signatures: {IMPORT_ERROR} (the OS package python3-cryptography;"
            " the artifact role's trust tasks install it)"
        )
    try:
        module.exit_json(changed=False, **verify(module.params))
    except VerifyError as exc:
        module.fail_json(msg=str(exc))


if __name__ == "__main__":
    main()
