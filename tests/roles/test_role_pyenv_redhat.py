"""The pyenv role's RedHat (Amazon Linux 2023) path, which the testbed cannot boot.

Checked on the controller: vars/RedHat.yml against vars/Debian.yml, the templates rendered
for RedHat and executed (the profile script in sh, the python-build definition in bash with
python-build's functions stubbed), and the prebuilt-cache key computed from Amazon Linux facts.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ROLE = REPO / "roles" / "pyenv"
BIN = Path(sys.executable).parent
SHA = "d01ec6a33bc10009b09c17da95cc2759af5a580a7316b3a446eb4190e13f97b2"


def _vars(name: str) -> dict:
    return yaml.safe_load((ROLE / "vars" / f"{name}.yml").read_text())


def test_os_vars_define_the_same_names() -> None:
    debian, redhat = _vars("Debian"), _vars("RedHat")
    assert set(debian) == set(redhat)
    for name, value in redhat.items():
        assert name.startswith("pyenv_os_")
        assert value and len(value) == len(set(value)), name


# what CPython's build needs, as Debian and as dnf (Amazon Linux 2023) name it
CAPABILITIES = {
    "ssl": ("libssl-dev", "openssl-devel"),
    "sqlite3": ("libsqlite3-dev", "sqlite-devel"),
    "readline": ("libreadline-dev", "readline-devel"),
    "lzma": ("liblzma-dev", "xz-devel"),
    "bz2": ("libbz2-dev", "bzip2-devel"),
    "ctypes": ("libffi-dev", "libffi-devel"),
    "zlib": ("zlib1g-dev", "zlib-devel"),
    "uuid": ("uuid-dev", "libuuid-devel"),
    "dbm.gnu": ("libgdbm-dev", "gdbm-devel"),
    "curses": ("libncurses-dev", "ncurses-devel"),
    "compiler": ("gcc", "gcc"),
    "make": ("make", "make"),
}


@pytest.mark.parametrize("capability", sorted(CAPABILITIES))
def test_both_families_have_the_build_dependency(capability: str) -> None:
    deb, rpm = CAPABILITIES[capability]
    assert deb in _vars("Debian")["pyenv_os_build_packages"]
    assert rpm in _vars("RedHat")["pyenv_os_build_packages"]


def test_redhat_names_are_dnf_names() -> None:
    redhat = _vars("RedHat")
    names = [n for v in redhat.values() for n in v]
    assert not [n for n in names if n.endswith("-dev")]
    # AL2023 ships curl-minimal; asking for "curl" conflicts with it
    assert "curl" not in names
    assert "zstd" in redhat["pyenv_os_base_packages"]  # the prebuilt packages are .tar.zst


def test_redhat_templates_render_and_run(render_templates, tmp_path: Path) -> None:
    out = render_templates(
        [
            {
                "role": "pyenv",
                "os_family": "RedHat",
                "templates": ["pyenv.sh.j2", "python-build-definition.j2"],
                "overrides": {
                    "pyenv_root": "/opt/pyenv",
                    "pyenv_python_version": "3.12.1",
                    "pyenv_python_source_url": "http://mirror.example/Python-3.12.1.tgz",
                    "pyenv_python_source_sha256": SHA,
                },
            }
        ]
    )[0]

    # the profile script, sourced twice by a POSIX sh, puts pyenv first on PATH once
    profile = out["pyenv.sh.j2"]
    result = subprocess.run(
        ["sh", "-c", f'. "{profile}"; . "{profile}"; echo "$PYENV_ROOT"; echo "$PATH"'],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    root, path = result.stdout.splitlines()
    assert root == "/opt/pyenv"
    assert path == "/opt/pyenv/shims:/opt/pyenv/bin:/usr/bin:/bin"

    # the python-build definition calls install_package with the URL, its sha and 3.12's checks
    definition = out["python-build-definition.j2"]
    stubs = (
        'prefer_openssl3() { echo "prefer_openssl3"; }\n'
        'install_package() { printf "%s\\n" "$@"; }\n'
    )
    result = subprocess.run(
        [
            "bash",
            "-c",
            f'{stubs} set -e; . "{definition}"; echo "ssl=$PYTHON_BUILD_CONFIGURE_WITH_OPENSSL"',
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.splitlines() == [
        "prefer_openssl3",
        "Python-3.12.1",
        f"http://mirror.example/Python-3.12.1.tgz#{SHA}",
        "standard",
        "verify_py312",
        "copy_python_gdb",
        "ensurepip",
        "ssl=1",
    ]


PLATFORMS = [
    # (facts, the key hosts with these facts share)
    (
        {"distribution": "Amazon", "distribution_major_version": "2023", "architecture": "x86_64"},
        "python/amazon-2023-x86_64/cpython-3.12.1.tar.zst",
    ),
    (
        {"distribution": "Amazon", "distribution_major_version": "2023", "architecture": "aarch64"},
        "python/amazon-2023-aarch64/cpython-3.12.1.tar.zst",
    ),
    (
        {"distribution": "Debian", "distribution_major_version": "12", "architecture": "x86_64"},
        "python/debian-12-x86_64/cpython-3.12.1.tar.zst",
    ),
]


def test_prebuilt_key_per_platform(tmp_path: Path) -> None:
    """Hosts share a prebuilt Python only with the same OS, major version and architecture."""
    plays = [
        {
            "name": f"Compute the key for {facts}",
            "hosts": "localhost",
            "gather_facts": False,
            "vars": {"ansible_facts": facts},
            "tasks": [
                {"ansible.builtin.include_vars": str(ROLE / "defaults/main.yml")},
                {"ansible.builtin.include_vars": str(ROLE / "vars/main.yml")},
                {"ansible.builtin.debug": {"msg": "{{ pyenv_prebuilt_key }}"}},
            ],
        }
        for facts, _ in PLATFORMS
    ]
    playbook = tmp_path / "key.yml"
    playbook.write_text(yaml.safe_dump(plays))
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.builtin.json"
    env["ANSIBLE_LOCALHOST_WARNING"] = "false"
    env["ANSIBLE_INVENTORY_UNPARSED_WARNING"] = "false"
    proc = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(playbook)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    keys = [p["tasks"][-1]["hosts"]["localhost"]["msg"] for p in json.loads(proc.stdout)["plays"]]
    assert keys == [key for _, key in PLATFORMS]
