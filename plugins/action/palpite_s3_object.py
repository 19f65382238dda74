"""Read small S3 objects, or presign one, in the controller's Ansible worker process.

The artifact role's locate step read an artifact's manifest and its signature with
amazon.aws.s3_object (a module run each, about 0.8 s on the project's machine) and
presigned the download URL with a third; every release reads at least one artifact, and
each host's download another. Here boto3 (loaded by the controller already, for the
inventory) does it in the worker Ansible forks for the task, well under 0.2 s.

  mode: read     keys (a list): their contents as text, None for a key that does not exist
  mode: presign  key, expiry: a GET URL (run the task with no_log: it is a credential)
  aws: the connection, shaped like the inventory's `aws_module_defaults` (what the
    amazon.aws modules take): region, endpoint_url, access_key, secret_key,
    session_token, profile; an empty or missing one falls back to boto3's own chain
    (environment, profile, instance role). Any other key is refused, not ignored.
"""

from __future__ import annotations

from typing import Any

from ansible.plugins.action import ActionBase

_CLIENT_ARGS = {
    "region": "region_name",
    "endpoint_url": "endpoint_url",
    "access_key": "aws_access_key_id",
    "secret_key": "aws_secret_access_key",
    "session_token": "aws_session_token",
}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset({"mode", "bucket", "keys", "key", "expiry", "aws"})

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        args = self._task.args
        bucket, mode = str(args["bucket"]), str(args.get("mode") or "read")
        try:
            s3 = self._client(args)
            if mode == "presign":
                url = s3.generate_presigned_url(
                    "get_object",
                    Params={"Bucket": bucket, "Key": str(args["key"])},
                    ExpiresIn=int(args.get("expiry") or 900),
                )
                return {**result, "changed": False, "url": url}
            contents = {str(key): self._read(s3, bucket, str(key)) for key in args["keys"]}
        except Exception as exc:  # one line, as a module failure would say it
            name = f"s3://{bucket}/{args.get('key') or ', '.join(map(str, args.get('keys') or []))}"
            return {**result, "failed": True, "msg": f"cannot {mode} {name}: {exc}"}
        return {**result, "changed": False, "contents": contents}

    @staticmethod
    def _client(args: dict[str, Any]) -> Any:
        import boto3  # what amazon.aws uses; already imported by the controller's inventory
        from botocore.config import Config

        aws = dict(args.get("aws") or {})
        unknown = sorted(set(aws) - set(_CLIENT_ARGS) - {"profile"})
        if unknown:
            raise ValueError(f"aws: {', '.join(unknown)} not supported here")
        options = {name: str(aws[arg]) for arg, name in _CLIENT_ARGS.items() if aws.get(arg)}
        session = boto3.Session(profile_name=str(aws["profile"]) if aws.get("profile") else None)
        # SigV4 presigned URLs, as amazon.aws's geturl makes them.
        return session.client("s3", config=Config(signature_version="s3v4"), **options)

    @staticmethod
    def _read(s3: Any, bucket: str, key: str) -> str | None:
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            return None
        return body.decode("utf-8")
