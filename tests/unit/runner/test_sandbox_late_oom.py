"""An OOM kill whose event reaches the engine after the container's exit still reads as one."""

from __future__ import annotations

from typing import Any

from runner.host.sandbox import docker as docker_sandbox


class LateContainer:
    """A container that exited 137 and is marked OOMKilled only after `late` reloads."""

    def __init__(self, late: int | None) -> None:
        self.late = late
        self.reloads = 0
        self.attrs: dict[str, Any] = {"State": {"ExitCode": 137, "OOMKilled": False}}

    def reload(self) -> None:
        self.reloads += 1
        if self.late is not None and self.reloads >= self.late:
            self.attrs = {"State": {"ExitCode": 137, "OOMKilled": True}}


def test_an_oom_event_landing_after_the_exit_is_read() -> None:
    container = LateContainer(late=3)
    state = docker_sandbox._late_oom(container)  # type: ignore[arg-type]
    assert state["OOMKilled"] is True
    assert container.reloads == 3


def test_a_plain_kill_stays_a_kill_once_the_wait_is_over(monkeypatch: Any) -> None:
    monkeypatch.setattr(docker_sandbox, "OOM_EVENT_WAIT_S", 0.3)
    container = LateContainer(late=None)
    state = docker_sandbox._late_oom(container)  # type: ignore[arg-type]
    assert state["OOMKilled"] is False
    assert container.reloads >= 1
