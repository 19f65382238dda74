"""plugins/modules/palpite_packages_missing.py: which packages the package database does
not mark installed, from dpkg-query's and rpm's output as the module asks for it."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "plugins" / "modules"))

from palpite_packages_missing import QUERIES, missing  # noqa: E402

# dpkg-query's status abbreviations: "ii " installed, "rc " removed with its
# configuration kept, "iU " unpacked but not configured. An unknown name prints nothing
# on stdout (its complaint goes to stderr).
DPKG_OUTPUT = "ii tar\nrc procps\niU gzip\nii libc6\n"
# rpm prints the format for each package it finds and a sentence for each it does not.
RPM_OUTPUT = "ii tar\npackage procps-ng is not installed\nii gzip\n"


def test_dpkg_only_fully_installed_packages_count() -> None:
    names = ["tar", "procps", "gzip", "no-such-package"]
    assert missing(names, DPKG_OUTPUT) == ["procps", "gzip", "no-such-package"]


def test_rpm_a_missing_package_is_named_in_a_sentence() -> None:
    assert missing(["tar", "procps-ng", "gzip"], RPM_OUTPUT) == ["procps-ng"]


def test_each_name_once_in_the_given_order() -> None:
    assert missing(["b", "a", "b", "tar"], DPKG_OUTPUT) == ["b", "a"]
    assert missing([], "") == []


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="not a Debian machine")
def test_the_real_dpkg_query_with_the_modules_own_arguments() -> None:
    # dpkg itself is installed wherever dpkg-query runs; it exits 1 for the unknown name
    # and still prints the known one, which the module relies on.
    names = ["dpkg", "palpite-no-such-package"]
    done = subprocess.run(
        ["dpkg-query", *QUERIES["dpkg-query"], *names], capture_output=True, text=True
    )
    assert done.returncode == 1
    assert missing(names, done.stdout) == ["palpite-no-such-package"]
