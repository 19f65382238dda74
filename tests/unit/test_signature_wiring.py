"""Where the playbooks check and make signatures (read from the YAML, nothing run): every
artifact fetch names its kind, the controller checks a release's signature before the plan
is pinned (so before any host changes), the hosts get their trusted keys before any role
downloads, and whatever publishes an artifact signs it."""

from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]


def _tasks(node: Any) -> list[dict[str, Any]]:
    """Every task in a task list, blocks, rescues and always included, in order."""
    found = []
    for task in node or []:
        found.append(task)
        for part in ("block", "rescue", "always"):
            found += _tasks(task.get(part))
    return found


def _includes(task: dict[str, Any], tasks_from: str) -> bool:
    role = task.get("ansible.builtin.include_role") or {}
    return role.get("name") == "artifact" and role.get("tasks_from") == tasks_from


def _load(path: str) -> Any:
    return yaml.safe_load((REPO / path).read_text())


def test_every_fetch_names_the_artifact_kind() -> None:
    users = 0
    for path in [*REPO.glob("roles/*/tasks/*.yml"), *REPO.glob("playbooks/**/*.yml")]:
        tasks = _load(str(path.relative_to(REPO)))
        if not isinstance(tasks, list) or any("hosts" in t for t in tasks):
            tasks = [t for play in tasks or [] for t in _tasks(play.get("tasks"))]
        for task in _tasks(tasks):
            if _includes(task, "locate") or _includes(task, "sign"):
                users += 1
                kind = (task.get("vars") or {}).get("artifact_kind")
                assert kind in ("model-bundle", "app-release", "python-archive"), (path, task)
    assert users >= 6


def test_a_release_checks_the_signature_on_the_controller_before_pinning_its_target() -> None:
    prepare = [t.get("name", "") for t in _tasks(_load("playbooks/tasks/release_prepare.yml"))]
    assert prepare.index("Check the signature of the version's archive") < prepare.index(
        "Pin the version and its checksum"
    )
    publish = next(
        t for t in _tasks(_load("playbooks/tasks/release_prepare.yml"))
        if str(t.get("name", "")).startswith("Publish {{")
    )  # fmt: skip
    assert "'--signing-key', artifact_signer.key" in publish["ansible.builtin.command"]["argv"]
    app = _load("playbooks/release_app.yml")
    names = [t.get("name", "") for play in app for t in _tasks(play.get("tasks"))]
    assert names.index("Check the release's signature before any host changes") < names.index(
        "Pin the release"
    )


def test_configure_installs_the_trusted_keys_before_the_roles_download() -> None:
    play = next(p for p in _load("playbooks/configure.yml") if p.get("hosts") == "app")
    assert _includes(play["pre_tasks"][0], "trust")


def test_what_publishes_an_artifact_signs_it() -> None:
    for path in (
        "roles/model_api/tasks/build_release.yml",
        "roles/pyenv/tasks/prebuilt_publish.yml",
        "playbooks/tasks/seed_python.yml",
        "tests/molecule/seed-python.yml",
    ):
        tasks = _load(path)
        if any("hosts" in t for t in tasks):
            tasks = [t for play in tasks for t in _tasks(play.get("tasks"))]
        assert any(_includes(t, "sign") for t in _tasks(tasks)), path


def test_the_hosts_check_runs_with_the_os_python_that_has_cryptography() -> None:
    # Found by upgrading an environment: discovery picked the prebuilt /usr/local/bin/python3.12
    # (no cryptography) on hosts that already had it, and every download was refused.
    [verify] = [
        t
        for t in _tasks(_load("roles/artifact/tasks/download.yml"))
        if "palpite_artifact_verify" in t
    ]
    assert verify["vars"]["ansible_python_interpreter"] == "{{ artifact_host_python }}"
    assert _load("roles/artifact/vars/main.yml")["artifact_host_python"] == "/usr/bin/python3"
    for family in ("Debian", "RedHat"):
        assert (
            "python3-cryptography"
            in _load(f"roles/artifact/vars/{family}.yml")["artifact_os_packages"]
        )
