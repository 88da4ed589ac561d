"""The systemd units in deploy/systemd, checked without systemd running.

``systemd-analyze verify`` reads each unit as systemd would (every key known, every value
parsed, the command executable), with the install prefix ``/opt/c2d`` pointed at this
checkout's virtualenv; each ExecStart is a real `c2d` command whose options exist (it runs
with ``--help``); and the data host's unit keeps the machine's mount namespace, without which
the /outputs it mounts for a job never reaches the Docker engine.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[3] / "deploy" / "systemd"
PREFIX = "/opt/c2d/bin/c2d"
C2D = Path(sys.executable).with_name("c2d")
INSTANCE = "hospital-b"
# Settings that make systemd give a service a mount namespace of its own (systemd.exec(5)).
NAMESPACING = {
    "ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices", "PrivateMounts",
    "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs",
    "ProtectControlGroups", "ProtectProc", "ProcSubset", "ReadOnlyPaths", "ReadWritePaths",
    "InaccessiblePaths", "ExecPaths", "NoExecPaths", "TemporaryFileSystem", "BindPaths",
    "BindReadOnlyPaths", "RootDirectory", "RootImage", "MountFlags", "MountAPIVFS",
    "PrivateNetwork", "NetworkNamespacePath", "ProtectHostname", "LogNamespace",
}  # fmt: skip


def settings(unit: str) -> dict[str, list[str]]:
    """Every ``Key=value`` of ``unit``, in any section, a key's values in order."""
    found: dict[str, list[str]] = {}
    for line in (UNITS / unit).read_text().splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def instantiated(unit: str) -> tuple[str, str]:
    """``unit``'s file name and text for systemd here: the template as ``@hospital-b``, the
    install prefix at this checkout's `c2d`."""
    name = unit.replace("@.", f"@{INSTANCE}.")
    return name, (UNITS / unit).read_text().replace(PREFIX, str(C2D))


@pytest.fixture(params=["c2d-control.service", "c2d-host@.service"])
def unit(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_systemd_reads_every_setting_of_the_unit(unit, tmp_path):
    if shutil.which("systemd-analyze") is None:
        from tests.conftest import missing

        missing("systemd-analyze", "apt-get install systemd")
    name, text = instantiated(unit)
    (tmp_path / name).write_text(text)

    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(tmp_path / name)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr  # an unknown key or a bad value is only a warning


def test_exec_start_is_a_real_c2d_command(unit):
    [command] = settings(unit)["ExecStart"]
    argv = shlex.split(command.replace("%i", INSTANCE))
    assert argv[0] == PREFIX

    done = subprocess.run(
        [str(C2D), *argv[1:], "--help"], capture_output=True, text=True, timeout=60, check=False
    )

    assert done.returncode == 0, done.stderr
    words = " ".join(arg for arg in argv[1:] if arg.isalpha())  # the command, not its options
    assert f"Usage: c2d {words} [OPTIONS]" in done.stdout


def test_the_control_plane_runs_as_its_own_user_with_nothing_to_spare():
    control = settings("c2d-control.service")
    assert control["User"] == ["c2d"]
    assert control["CapabilityBoundingSet"] == [""]
    assert control["NoNewPrivileges"] == ["yes"]
    assert control["ProtectSystem"] == ["strict"]
    assert control["StateDirectory"] == ["c2d"]
    assert control["Environment"] == ["C2D_HOME=/var/lib/c2d"]
    assert control["EnvironmentFile"] == ["/etc/c2d/control.env"]


def test_the_data_host_keeps_the_machines_mount_namespace():
    host = settings("c2d-host@.service")
    assert NAMESPACING.isdisjoint(host), sorted(NAMESPACING & host.keys())
    assert host["ExecStart"] == [f"{PREFIX} host start --home /var/lib/c2d-host/%i"]
    assert host["StateDirectory"] == ["c2d-host/%i"]
    assert host["EnvironmentFile"] == ["/etc/c2d/host-%i.env"]
    assert host["KillMode"] == ["mixed"]  # the agent alone hands its jobs back
    assert host["NoNewPrivileges"] == ["yes"]
