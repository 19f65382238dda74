"""No release code as root (issue 17, part 5), shown on the controller without a testbed host.

- The service unit's protections are one list (vars/main.yml, model_api_sandbox_properties):
  the rendered unit holds exactly those, and a check of release code (tasks/check.yml) passes
  every one of them to systemd-run, plus no network. check.yml runs here for real, against a
  stand-in systemd-run that records its command line and runs the command.
- The app release is installed by the install user, never root: the venv, `poetry install`
  and the bytecode run in transient units as that user; the tree is root's before the import
  check, which runs sandboxed; no task runs the release's code as a plain root process.
- A model archive is unpacked by the release's palpite-model-check as the install user, with
  no network, reading the archive root opened as its stdin; root then owns the result.
- Where systemd-run works (systemd as PID 1, root), a command under the check's properties
  cannot reach a TCP port on loopback that a plain process reaches.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ROLE = REPO / "roles" / "model_api"
BIN = Path(sys.executable).parent

# Unit settings that are not protections: the service itself, its runtime directory and the
# cleanups a unit does when it stops (a check must not: it would empty /run/palpite or drop
# the running service's IPC objects).
NOT_SANDBOX = {
    "Description", "Documentation", "After", "StartLimitIntervalSec", "StartLimitBurst",
    "Type", "NotifyAccess", "WorkingDirectory", "EnvironmentFile", "ExecStart", "ExecReload",
    "KillMode", "KillSignal", "TimeoutStartSec", "TimeoutStopSec", "Restart", "RestartSec",
    "SyslogIdentifier", "RuntimeDirectory", "RuntimeDirectoryMode", "RemoveIPC", "WantedBy",
}  # fmt: skip

FAKE_SYSTEMD_RUN = """#!{python}
import json, subprocess, sys
with open({record!r}, "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\\n")
command = sys.argv[sys.argv.index("--") + 1:]
sys.exit(subprocess.run(command).returncode)
"""

CHECK_PLAY = """
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - ansible.builtin.include_role:
        name: model_api
        tasks_from: check
      vars:
        model_api_check_dir: /tmp
        model_api_check_command: ["PYTHON", -c, "print('{\\"ok\\": 1}')"]
    - ansible.builtin.copy:
        content: "{{ model_api_check.stdout }}"
        dest: OUT
        mode: "0644"
"""

PLAY = """
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Load the role's defaults and vars (as the role sees them)
      ansible.builtin.include_vars: "{{ item }}"
      loop: [ROLE/defaults/main.yml, ROLE/vars/main.yml, ROLE/vars/Debian.yml]
    - name: Write what the role would run
      ansible.builtin.copy:
        content: "{{ {'sandbox': model_api_sandbox_properties, 'check': model_api_check_properties,
                      'install_run': model_api_install_run,
                      'unpack': model_api_unpack_properties,
                      'unpack_root': model_api_model_unpack_root} | to_json }}"
        dest: OUT
        mode: "0644"
      vars: APP_BLOCK_VARS
"""


def _unit_settings(text: str) -> list[str]:
    return [line for line in text.splitlines() if line[:1].isupper() and "=" in line.split(" ")[0]]


def _ansible_env() -> dict[str, str]:
    return dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1")


def _playbook(play: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", "localhost,", str(play),
         "-e", f"ansible_python_interpreter={sys.executable}", *extra],
        cwd=REPO, env=_ansible_env(), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def _app_tasks() -> list[dict[str, Any]]:
    return yaml.safe_load((ROLE / "tasks" / "app.yml").read_text())


def _install_block() -> dict[str, Any]:
    return next(t for t in _app_tasks() if t.get("name") == "Download and install the release")


@pytest.fixture(scope="module")
def role_view(tmp_path_factory) -> dict[str, Any]:
    """The sandbox lists and the install user's command prefix, templated by Ansible."""
    work = tmp_path_factory.mktemp("sandbox")
    block_vars = dict(_install_block()["vars"])
    block_vars["model_api_app_release"] = "1.0.0-abc"
    play = (
        PLAY.replace("ROLE", str(ROLE))
        .replace("OUT", str(work / "out.json"))
        .replace("APP_BLOCK_VARS", json.dumps(block_vars))
    )
    (work / "play.yml").write_text(play)
    run = _playbook(work / "play.yml")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return json.loads((work / "out.json").read_text())


@pytest.fixture(scope="module")
def unit(render_templates) -> str:
    out = render_templates(
        [{"role": "model_api", "os_family": "Debian", "templates": ["palpite.service.j2"]}]
    )
    return out[0]["palpite.service.j2"].read_text()


def test_the_unit_holds_exactly_the_sandbox_list(unit, role_view):
    protections = [s for s in _unit_settings(unit) if s.split("=", 1)[0] not in NOT_SANDBOX]
    assert protections == role_view["sandbox"]
    for wanted in ("User=palpite", "ProtectSystem=strict", "PrivateTmp=yes", "NoNewPrivileges=yes",
                   "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6", "IPAddressDeny=any",
                   "CapabilityBoundingSet="):  # fmt: skip
        assert wanted in role_view["sandbox"]


def test_a_check_has_the_units_protections_and_no_network(role_view):
    check = role_view["check"]
    assert check[: len(role_view["sandbox"])] == role_view["sandbox"]
    assert "PrivateNetwork=yes" in check
    assert "RuntimeMaxSec=300" in check
    assert not any(p.startswith(("RuntimeDirectory", "RemoveIPC")) for p in check)


def test_check_yml_passes_every_property_to_systemd_run(tmp_path, role_view):
    record = tmp_path / "systemd-run.jsonl"
    fake = tmp_path / "systemd-run"
    fake.write_text(FAKE_SYSTEMD_RUN.format(python=sys.executable, record=str(record)))
    fake.chmod(0o755)
    play = tmp_path / "play.yml"
    play.write_text(
        CHECK_PLAY.replace("PYTHON", sys.executable).replace("OUT", str(tmp_path / "stdout.json"))
    )
    run = _playbook(play, "-e", json.dumps({"model_api_systemd_run": [str(fake), "--wait"]}))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert json.loads((tmp_path / "stdout.json").read_text()) == {"ok": 1}
    (argv,) = [json.loads(line) for line in record.read_text().splitlines()]
    split = argv.index("--")
    assert argv[split + 1 :] == [sys.executable, "-c", "print('{\"ok\": 1}')"]
    options = argv[:split]
    assert "--working-directory=/tmp" in options
    properties = [o.removeprefix("--property=") for o in options if o.startswith("--property=")]
    assert properties == role_view["check"]


def test_check_yml_hands_a_file_root_opens_to_the_command_as_stdin(tmp_path):
    """The model unpack's way in: the unit reads the archive from stdin, opened by root."""
    record = tmp_path / "systemd-run.jsonl"
    fake = tmp_path / "systemd-run"
    fake.write_text(FAKE_SYSTEMD_RUN.format(python=sys.executable, record=str(record)))
    fake.chmod(0o755)
    given = tmp_path / "archive.bin"
    given.write_text('{"from": "stdin"}')
    play = tmp_path / "play.yml"
    play.write_text(
        CHECK_PLAY.replace("PYTHON", sys.executable)
        .replace("OUT", str(tmp_path / "stdout.json"))
        .replace("print('{\\\"ok\\\": 1}')", "import sys; print(sys.stdin.read())")
    )
    extra = {
        "model_api_systemd_run": [str(fake), "--wait"],
        "model_api_check_stdin": str(given),
        "model_api_check_properties": ["User=nobody"],
    }
    run = _playbook(play, "-e", json.dumps(extra))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert json.loads((tmp_path / "stdout.json").read_text()) == {"from": "stdin"}
    (argv,) = [json.loads(line) for line in record.read_text().splitlines()]
    assert [o for o in argv if o.startswith("--property=")] == ["--property=User=nobody"]


def test_the_release_is_installed_by_the_install_user_not_root(role_view):
    run = role_view["install_run"]
    assert run[:5] == ["systemd-run", "--wait", "--pipe", "--collect", "--quiet"]
    assert run[-1] == "--"
    properties = [o.removeprefix("--property=") for o in run if o.startswith("--property=")]
    assert "User=palpite-install" in properties and "Group=palpite-install" in properties
    assert not any(p in properties for p in ("User=root", "User=0", "User=palpite"))
    for wanted in ("NoNewPrivileges=yes", "CapabilityBoundingSet=", "ProtectSystem=strict",
                   "UMask=0022", "RuntimeMaxSec=1800"):  # fmt: skip
        assert wanted in properties
    writable = next(p for p in properties if p.startswith("ReadWritePaths="))
    assert writable.split("=", 1)[1].split() == [
        "/srv/palpite/app/releases/1.0.0-abc",
        "/var/lib/palpite-install",
        "/var/lib/palpite-install/cache",
    ]
    env = [o.removeprefix("--setenv=") for o in run if o.startswith("--setenv=")]
    assert "POETRY_CACHE_DIR=/var/lib/palpite-install/cache" in env
    assert "POETRY_VIRTUALENVS_IN_PROJECT=true" in env


def _argv(task: dict[str, Any]) -> str:
    return str(task.get("ansible.builtin.command", {}).get("argv", ""))


def test_no_release_code_runs_as_root_and_root_owns_the_result():
    tasks = _install_block()["block"]
    names = [t["name"] for t in tasks]
    step = {name: i for i, name in enumerate(names)}
    pairs = list(zip(names, tasks, strict=True))
    as_installer = [n for n, t in pairs if "model_api_install_run" in _argv(t)]
    assert all(any(w in n for w in ("venv", "poetry", "bytecode")) for n in as_installer)
    assert len(as_installer) == 3  # venv, poetry install, bytecode
    handed = step["Hand the release to the install user"]
    to_root = step["Give the release to root, read-only to everyone else"]
    check = step["Check the release imports on this host (under the service's sandbox)"]
    assert handed < min(step[n] for n in as_installer)
    marked = step["Mark the release as installed"]
    assert max(step[n] for n in as_installer) < to_root < check < marked
    assert tasks[to_root]["ansible.builtin.include_tasks"] == "to_root.yml"
    assert tasks[to_root]["vars"]["model_api_to_root_dir"] == "{{ model_api_release_dir }}"
    assert tasks[check]["ansible.builtin.include_tasks"] == "check.yml"
    # Nothing else runs a command from the release (its venv, its code) directly.
    for name, task in pairs:
        if name in as_installer:
            continue
        text = json.dumps(task)
        assert ".venv/bin" not in _argv(task), name
        assert "poetry" not in _argv(task) and "compileall" not in text, name
    assert not any("become_user" in json.dumps(t) for t in _app_tasks())


def test_model_checks_run_sandboxed_and_nothing_uses_runuser():
    model = (ROLE / "tasks" / "model.yml").read_text()
    tasks = yaml.safe_load(model)
    wanted = "Verify and smoke-test the model before it goes live"
    checks = next(t for t in tasks if t.get("name") == wanted)
    commands = {t["vars"]["model_api_check_command"][1] for t in checks["block"] if "vars" in t}
    # `smoke` alone: the app's loader checks every file's sha256 before it unpickles
    # (tests/unit/test_model_check.py), so a separate `verify` run would only repeat it.
    assert commands == {"smoke"}
    assert all(
        t["ansible.builtin.include_tasks"] == "check.yml" for t in checks["block"] if "vars" in t
    )
    app_release = (REPO / "playbooks" / "tasks" / "release_change_app.yml").read_text()
    assert "tasks_from: check" in app_release
    for path in [*(ROLE / "tasks").glob("*.yml"), REPO / "playbooks/tasks/release_change_app.yml"]:
        assert "runuser" not in path.read_text(), path


def _model_tasks() -> list[dict[str, Any]]:
    """model.yml's tasks, blocks flattened."""
    out: list[dict[str, Any]] = []

    def walk(tasks: list[dict[str, Any]]) -> None:
        for task in tasks:
            out.append(task)
            for key in ("block", "rescue", "always"):
                walk(task.get(key, []))

    walk(yaml.safe_load((ROLE / "tasks" / "model.yml").read_text()))
    return out


def test_a_model_is_unpacked_by_the_install_user_without_network(role_view):
    properties = role_view["unpack"]
    assert "User=palpite-install" in properties and "Group=palpite-install" in properties
    for wanted in ("PrivateNetwork=yes", "NoNewPrivileges=yes", "CapabilityBoundingSet=",
                   "ProtectSystem=strict", "ReadWritePaths=/srv/palpite/unpack"):  # fmt: skip
        assert wanted in properties
    # systemd keeps the last RuntimeMaxSec: the check's limit, not poetry's
    limits = [p for p in properties if p.startswith("RuntimeMaxSec=")]
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    assert limits[-1] == f"RuntimeMaxSec={defaults['model_api_model_check_timeout']}"
    tasks = _model_tasks()
    # One way to run a command in a transient unit (check.yml), the unpack's included.
    assert [t for t in tasks if "model_api_systemd_run" in _argv(t)] == []
    runs = [
        t for t in tasks
        if t.get("ansible.builtin.include_tasks") == "check.yml"
        and "unpack" in t.get("vars", {}).get("model_api_check_command", [])
    ]  # fmt: skip
    assert len(runs) == 1
    unpack = runs[0]["vars"]
    assert unpack["model_api_check_command"][1:3] == ["unpack", "-"]
    assert unpack["model_api_check_properties"] == "{{ model_api_unpack_properties }}"
    assert unpack["model_api_check_stdin"] == "{{ model_api_model_archive }}"  # root opens it
    check = yaml.safe_load((ROLE / "tasks" / "check.yml").read_text())
    check_argv = str(check[0]["ansible.builtin.command"]["argv"])
    assert '< "$1"' in check_argv and "model_api_check_stdin" in check_argv
    names = [t.get("name", "") for t in tasks]
    handover = tasks[names.index("Give the unpacked model to root")]
    assert handover["ansible.builtin.include_tasks"] == "to_root.yml"
    assert handover["vars"]["model_api_to_root_dir"].startswith("{{ model_api_model_unpack_dir }}/")
    # root's before the rename makes it appear in models/releases
    assert names.index("Give the unpacked model to root") < names.index(
        "Move the model into models/releases"
    )
    # One way to give a tree to root: the shared task file.
    [give] = yaml.safe_load((ROLE / "tasks" / "to_root.yml").read_text())
    assert "root:root" in _argv(give) and "go-w" in _argv(give) and "-P -h" in _argv(give)


def test_release_code_is_given_to_root_in_one_place():
    for path in (ROLE / "tasks").glob("*.yml"):
        if path.name != "to_root.yml":
            assert "chown -R" not in path.read_text(), path


def _systemd_run_works() -> bool:
    tool = shutil.which("systemd-run")
    if tool is None or os.geteuid() != 0:
        return False
    probe = [tool, "--wait", "--pipe", "--collect", "--quiet", "-p", "PrivateNetwork=yes", "true"]
    return subprocess.run(probe, capture_output=True, timeout=60, check=False).returncode == 0


@pytest.mark.skipif(not _systemd_run_works(), reason="systemd-run needs systemd as PID 1 and root")
def test_a_check_cannot_reach_a_loopback_port_a_plain_process_reaches(role_view):
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    threading.Thread(target=lambda: [server.accept() for _ in range(2)], daemon=True).start()
    probe = (
        "import socket, sys\n"
        f"try: socket.create_connection(('127.0.0.1', {port}), timeout=5)\n"
        "except OSError as e: sys.exit(f'refused: {e}')\n"
        "print('connected')\n"
    )
    plain = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert plain.stdout.strip() == "connected", plain.stderr
    # This machine has no service user: the check's properties as `nobody`, otherwise as is.
    properties = [
        "User=nobody" if p.startswith("User=") else "Group=nogroup" if p.startswith("Group=") else p
        for p in role_view["check"]
    ]
    argv = ["systemd-run", "--wait", "--pipe", "--collect", "--quiet"]
    argv += [f"--property={p}" for p in properties] + ["--", sys.executable, "-c", probe]
    sandboxed = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert sandboxed.returncode != 0 and "connected" not in sandboxed.stdout, sandboxed.stdout
    assert "refused" in sandboxed.stderr
    server.close()
