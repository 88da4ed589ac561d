"""One build step on the engine: a container made from the image so far, then a commit.

c2d does not hand a researcher's Dockerfile to the engine's builder (which runs steps as root
with Docker's default capabilities, on the default runtime, with no process or CPU limit, and
downloads and unpacks ``ADD`` sources itself). Each step is a container c2d creates with the
job sandbox's defaults, and a commit of its filesystem changes:

- ``RUN`` starts the container with no network, all capabilities dropped, no-new-privileges,
  the host's runtime (runsc where set), process, memory (= memory + swap), CPU, open-file and
  file-size limits, no core dumps, capped logs and a deadline; its exit code decides;
- ``COPY`` puts a tar c2d wrote itself (``runner.host.images.copying``) into a container that never
  starts; ``WORKDIR`` creates its folder the same way (the engine makes a container's working
  folder when it creates it);
- ``ENV``, ``LABEL``, ``USER``, ``CMD``, ``ENTRYPOINT`` and ``SHELL`` only change the config.

Every commit names the step in the history entry's comment, so the finished image's history
can be checked against the Dockerfile (``runner.host.images.build``). Step containers are named
``c2d-build-<hex>`` and carry no label (the engine would copy labels into the image).
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
from dataclasses import dataclass, field, replace
from typing import IO, Any

import docker
import docker.errors
import requests
from docker.types import LogConfig, Ulimit

from runner.host.images.policy import ByoPolicy

BUILD_PREFIX = "c2d-build-"
DEFAULT_SHELL = ("/bin/sh", "-c")
NOP = "#(nop) "
COMMENT = "c2d: "
_DIR_BIT = 1 << 31  # Go's os.ModeDir, as the engine's path stat reports it


@dataclass(frozen=True)
class ImageConfig:
    """The parts of an image's config a Dockerfile can set, as c2d tracks them step by step."""

    env: tuple[tuple[str, str], ...] = ()
    cmd: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    user: str = ""
    workdir: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    shell: tuple[str, ...] = DEFAULT_SHELL

    @classmethod
    def of(cls, attrs: dict[str, Any]) -> ImageConfig:
        """The config of an inspected image."""
        config = attrs.get("Config") or {}
        env = tuple(tuple(str(e).split("=", 1)) for e in config.get("Env") or [] if "=" in e)
        entrypoint = tuple(config.get("Entrypoint") or ())
        return cls(
            env=env,  # type: ignore[arg-type]
            cmd=tuple(config.get("Cmd") or ()),
            entrypoint=() if entrypoint == ("",) else entrypoint,
            user=str(config.get("User") or ""),
            workdir=str(config.get("WorkingDir") or ""),
            labels=tuple(sorted((config.get("Labels") or {}).items())),
            shell=tuple(config.get("Shell") or DEFAULT_SHELL),
        )

    def with_env(self, pairs: dict[str, str]) -> ImageConfig:
        merged = dict(self.env) | pairs
        return replace(self, env=tuple(merged.items()))

    def with_labels(self, pairs: dict[str, str]) -> ImageConfig:
        return replace(self, labels=tuple(sorted((dict(self.labels) | pairs).items())))

    def as_key(self) -> dict[str, Any]:
        """The config as plain data, for cache keys."""
        return {
            "env": self.env,
            "cmd": self.cmd,
            "entrypoint": self.entrypoint,
            "user": self.user,
            "workdir": self.workdir,
            "labels": self.labels,
            "shell": self.shell,
        }

    def commit_conf(self) -> dict[str, Any]:
        """The config a commit writes.

        The engine's commit fills fields left empty from the step's container (its command
        would become the image's ``Cmd``), so an image with neither ``Cmd`` nor ``Entrypoint``
        is written with ``Entrypoint [""]``, which the engine reads as none.
        """
        conf: dict[str, Any] = {
            "Env": [f"{k}={v}" for k, v in self.env],
            "User": self.user,
            "WorkingDir": self.workdir,
            "Labels": dict(self.labels),
            "Cmd": list(self.cmd),
            "Entrypoint": list(self.entrypoint) or ([] if self.cmd else [""]),
        }
        if self.shell != DEFAULT_SHELL:
            conf["Shell"] = list(self.shell)
        return conf


@dataclass
class StepContainer:
    """A step's container: created from ``image``, never started unless the step is a RUN."""

    client: docker.DockerClient
    image: str
    config: ImageConfig
    command: list[str]
    workdir: str = ""
    id: str = field(default="", init=False)

    def create(self, policy: ByoPolicy | None = None) -> StepContainer:
        """Create it; with ``policy`` (a RUN) under the sandbox's limits, else inert."""
        kwargs: dict[str, Any] = {
            "image": self.image,
            "command": self.command,
            "entrypoint": [""],
            "name": BUILD_PREFIX + secrets.token_hex(8),
            "hostname": "c2d-build",
            "user": self.config.user or None,
            "working_dir": self.workdir or self.config.workdir or None,
            "network_mode": "none",
            "network_disabled": True,
            "use_config_proxy": False,
            "detach": True,
        }
        if policy is not None:
            kwargs |= run_limits(policy)
        self.id = self.client.containers.create(**kwargs).id or ""
        return self

    def exists(self, path: str) -> str | None:
        """``"dir"``, ``"file"`` or None: what ``path`` is in this container's filesystem."""
        api = self.client.api
        response = api.head(
            api._url("/containers/{0}/archive", self.id),  # the SDK has no HEAD of a path
            params={"path": path},
        )
        if response.status_code == 404:
            return None
        response.raise_for_status()
        stat = json.loads(base64.b64decode(response.headers["X-Docker-Container-Path-Stat"]))
        return "dir" if int(stat.get("mode", 0)) & _DIR_BIT else "file"

    def put(self, tar: IO[bytes]) -> None:
        """Unpack ``tar`` (names relative to ``/``) into the container's filesystem."""
        self.client.api.put_archive(self.id, "/", tar)

    def commit(self, config: ImageConfig, comment: str) -> str:
        """Commit the container's changes with ``config``; return the new image's ID."""
        found = self.client.api.commit(
            self.id, message=COMMENT + comment, conf=config.commit_conf()
        )
        return str(found["Id"])

    def remove(self) -> None:
        """Remove the container, whatever its state; idempotent."""
        if self.id:
            with contextlib.suppress(docker.errors.NotFound, requests.exceptions.RequestException):
                self.client.api.remove_container(self.id, force=True)


def run_limits(policy: ByoPolicy) -> dict[str, Any]:
    """The sandbox a RUN step runs in: the job sandbox's defaults with the build's sizes.

    The root filesystem stays writable (that is what a step is for) and the step may run as
    the Dockerfile's USER, root included, but root without a single capability.
    """
    fsize = policy.max_image_bytes
    return {
        "runtime": policy.runtime,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "privileged": False,
        "init": True,
        "ipc_mode": "private",
        "shm_size": min(64 * 1024 * 1024, policy.build_memory_bytes // 4),
        "pids_limit": policy.build_pids,
        "mem_limit": policy.build_memory_bytes,
        "memswap_limit": policy.build_memory_bytes,
        "oom_score_adj": 1000,
        "nano_cpus": int(policy.build_cpus * 1e9),
        "ulimits": [
            Ulimit(name="nofile", soft=1024, hard=1024),
            Ulimit(name="fsize", soft=fsize, hard=fsize),
            Ulimit(name="core", soft=0, hard=0),
        ],
        "log_config": LogConfig(
            type="json-file",
            config={"max-size": str(max(policy.max_log_bytes // 2, 65536)), "max-file": "2"},
        ),
    }


def remove_leftovers(client: docker.DockerClient, older_than_s: float, now: float) -> int:
    """Remove step containers older than ``older_than_s`` (a build that died left them)."""
    removed = 0
    for found in client.api.containers(all=True, filters={"name": BUILD_PREFIX}):
        names = [str(n).lstrip("/") for n in found.get("Names") or []]
        if any(n.startswith(BUILD_PREFIX) for n in names) and found["Created"] < now - older_than_s:
            with contextlib.suppress(docker.errors.APIError):
                client.api.remove_container(found["Id"], force=True)
                removed += 1
    return removed
