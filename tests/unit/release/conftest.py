"""A moto S3 server for the release unit tests that run playbooks on the controller."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto.server import ThreadedMotoServer

from tests.unit.release.playbook_run import BUCKET, s3_of


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """An empty bucket BUCKET on a moto server of this module's own."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    s3_of(endpoint).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()
