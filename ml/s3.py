"""The S3 client every bucket operation uses (publish, fetch, the fleet lock).

Kept apart from the bundle machinery so that commands that only talk to the bucket start
without importing scikit-learn.
"""

from typing import Any


def s3_client(endpoint_url: str | None = None) -> Any:
    """An S3 client from the standard AWS settings; `endpoint_url` overrides them."""
    import boto3  # Lazy: train and package import this module's neighbours, not boto3.
    from botocore.config import Config

    # SigV4 presigned URLs: AWS refuses SigV2 in newer regions.
    config = Config(signature_version="s3v4", retries={"max_attempts": 5, "mode": "standard"})
    return boto3.client("s3", endpoint_url=endpoint_url, config=config)
