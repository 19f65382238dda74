"""The console-output host-key parser and the known_hosts merge of
plugins/modules/palpite_host_keys.py."""

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"
sys.path.insert(0, str(REPO / "plugins" / "modules"))

from palpite_host_keys import (  # noqa: E402
    HostKeyError,
    merge,
    parse_console_host_keys,
)

# cloud-init's console output on an Amazon Linux 2023 instance, in the format its
# cc_keys_to_console module writes (fingerprints through the logger, keys raw); the keys
# are generated for the fixture, their public halves kept beside it.
CONSOLE = (FIXTURES / "console_output_al2023.txt").read_text()
EXPECTED = [
    tuple((FIXTURES / f"console_output_al2023.{kind}.pub").read_text().split()[:2])
    for kind in ("ecdsa", "ed25519")
]


def _moto_sample() -> str:
    from moto.ec2.responses.general import SAMPLE_CONSOLE_OUTPUT

    return SAMPLE_CONSOLE_OUTPUT


def test_the_keys_block_of_a_recorded_console_output() -> None:
    assert parse_console_host_keys(CONSOLE) == EXPECTED
    assert [t for t, _ in EXPECTED] == ["ecdsa-sha2-nistp256", "ssh-ed25519"]


def test_prefixed_lines_and_the_last_block_win() -> None:
    # A reboot prints the block again; lines may carry a console prefix.
    prefixed = "\n".join(f"ec2: {line}" for line in CONSOLE.splitlines())
    assert parse_console_host_keys(prefixed) == EXPECTED
    older = "-----BEGIN SSH HOST KEY KEYS-----\n" + " ".join(EXPECTED[0]) + "\n"
    older += "-----END SSH HOST KEY KEYS-----\n"
    assert parse_console_host_keys(older + CONSOLE) == EXPECTED


@pytest.mark.parametrize(
    "console",
    [
        pytest.param(_moto_sample(), id="moto-sample-no-block"),
        pytest.param("", id="empty"),
        # Truncated before the END marker: nothing to pin.
        pytest.param(CONSOLE.split("-----END SSH HOST KEY KEYS")[0], id="truncated"),
        # The fingerprints block alone holds no keys.
        pytest.param(CONSOLE.split("-----BEGIN SSH HOST KEY KEYS")[0], id="fingerprints-only"),
    ],
)
def test_no_keys_when_the_output_holds_no_complete_block(console: str) -> None:
    assert parse_console_host_keys(console) == []


def test_a_key_that_is_not_its_type_is_refused() -> None:
    ed_blob = EXPECTED[1][1]
    garbled = CONSOLE.replace(f"ssh-ed25519 {ed_blob}", f"ssh-rsa {ed_blob}")
    with pytest.raises(HostKeyError, match="malformed ssh-rsa host key"):
        parse_console_host_keys(garbled)
    broken = CONSOLE.replace(ed_blob, ed_blob[:20] + "!!" + ed_blob[22:])
    # Not base64 at all: the line is no key line; the other key is still found.
    assert parse_console_host_keys(broken) == EXPECTED[:1]


def test_merge_pins_new_instances_by_id_and_keeps_pinned_ones() -> None:
    text, added, unpinned = merge("", {"i-0123456789abcdef0": EXPECTED, "i-0fedcba987654321f": []})
    assert added == ["i-0123456789abcdef0"]
    assert unpinned == ["i-0fedcba987654321f"]
    assert text.splitlines() == [f"i-0123456789abcdef0 {t} {b}" for t, b in EXPECTED]
    # Again: nothing changes, the pinned instance is not re-added.
    again, added, unpinned = merge(text, {"i-0123456789abcdef0": EXPECTED})
    assert (again, added, unpinned) == (text, [], [])
    # A pinned instance whose console no longer shows keys keeps its pin.
    assert merge(text, {"i-0123456789abcdef0": []}) == (text, [], [])


def test_merge_refuses_a_console_key_that_differs_from_the_pinned_one() -> None:
    text, _, _ = merge("", {"i-0123456789abcdef0": EXPECTED[:1]})
    with pytest.raises(HostKeyError, match="i-0123456789abcdef0 in its console output differs"):
        merge(text, {"i-0123456789abcdef0": EXPECTED[1:]})


def test_merge_refuses_what_is_no_instance_id() -> None:
    with pytest.raises(HostKeyError, match="is not an EC2 instance id"):
        merge("", {"10.0.0.1 evil": EXPECTED})
