"""Fixtures shared by every test suite."""

import urllib.request
from collections.abc import Iterator

import pytest
from moto.server import ThreadedMotoServer

_FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    # Keep a developer's ~/.aws out of the tests.
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
}


@pytest.fixture(scope="session")
def _moto_endpoint() -> Iterator[str]:
    # One real moto server per test session, on loopback and a port the OS picks.
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def moto_server(_moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A moto server's endpoint URL, emptied, with AWS_ENDPOINT_URL and fake credentials set."""
    for name, value in _FAKE_AWS_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", _moto_endpoint)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    reset = urllib.request.Request(f"{_moto_endpoint}/moto-api/reset", method="POST")
    no_proxy.open(reset, timeout=10).close()
    return _moto_endpoint
