"""What an owner reviews about a researcher's image, and the checks every such image must pass.

``describe_image`` reads an image's facts from the engine: which allowed base it extends (by
layer chain), its size and layers, and what its configuration asks for (``USER``,
``ENTRYPOINT``, ``CMD``, environment keys, volumes). Whatever these say, the sandbox's defaults
still hold at run time: the runner's uid, no network, read-only root, limits.

``check_image`` is the one gate a built or loaded image passes before c2d keeps it: it extends
an allowed base, is within the size and layer caps, and declares no ``VOLUME`` (Docker would
mount a writable, uncapped volume there at run time).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any, Literal

import docker
import docker.errors
from pydantic import BaseModel, ConfigDict

from runner.errors import ByoRefused, ByoTooLarge, ImageGone
from runner.host.images.policy import (
    AllowedBase,
    ByoPolicy,
    allowed_text,
    base_of,
    diff_ids_of,
    resolve_bases,
)
from runner.host.sandbox.interface import MiB

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class ImageFacts(BaseModel):
    """An image as review shows it. ``base`` is the allowed base's name in the policy."""

    model_config = _FROZEN

    schema_version: Literal[1] = 1
    image_id: str
    base: str | None
    base_id: str | None
    size: int
    layers: int
    base_layers: int
    user: str
    entrypoint: tuple[str, ...] | None
    cmd: tuple[str, ...] | None
    env_keys: tuple[str, ...]
    volumes: tuple[str, ...]
    workdir: str
    created: str


class BuiltImage(BaseModel):
    """A researcher's image that passed every check, tagged and kept on this host.

    ``source`` says how it came (``dockerfile`` or ``archive``); ``pins`` maps each base the
    Dockerfile named to the image ID it was built on; ``archive_tags`` are the names an archive
    carried (shown, never applied); ``build_log`` is the capped build or load log.
    """

    model_config = _FROZEN

    schema_version: Literal[1] = 1
    source: Literal["dockerfile", "archive"]
    facts: ImageFacts
    pins: dict[str, str] = {}
    archive_tags: tuple[str, ...] = ()
    build_log: str = ""

    @property
    def image_id(self) -> str:
        return self.facts.image_id

    @property
    def size(self) -> int:
        return self.facts.size

    @property
    def layers(self) -> int:
        return self.facts.layers

    @property
    def base(self) -> str | None:
        return self.facts.base

    @property
    def user(self) -> str:
        return self.facts.user

    @property
    def entrypoint(self) -> tuple[str, ...] | None:
        return self.facts.entrypoint

    @property
    def cmd(self) -> tuple[str, ...] | None:
        return self.facts.cmd


def _words(value: Any) -> tuple[str, ...] | None:
    if not value or list(value) == [""]:  # [""] is how c2d's builder writes "none"
        return None
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def inspect(client: docker.DockerClient, image_id: str) -> dict[str, Any]:
    """The engine's inspection of ``image_id``; ImageGone when it is not here."""
    try:
        attrs: dict[str, Any] = client.api.inspect_image(image_id)
    except docker.errors.ImageNotFound as exc:
        raise ImageGone(
            f"image {image_id} is not on this host (removed after its retention period, or "
            "never built here); submit the job again to rebuild it"
        ) from exc
    return attrs


def facts_of(attrs: dict[str, Any], bases: Iterable[AllowedBase]) -> ImageFacts:
    """Facts of an inspected image, the base found among ``bases``."""
    config = attrs.get("Config") or {}
    diff_ids = diff_ids_of(attrs)
    base = base_of(diff_ids, bases)
    env = config.get("Env") or []
    return ImageFacts(
        image_id=str(attrs["Id"]),
        base=base.ref if base else None,
        base_id=base.image_id if base else None,
        size=int(attrs.get("Size") or 0),
        layers=len(diff_ids),
        base_layers=len(base.diff_ids) if base else 0,
        user=str(config.get("User") or ""),
        entrypoint=_words(config.get("Entrypoint")),
        cmd=_words(config.get("Cmd")),
        env_keys=tuple(sorted(str(e).partition("=")[0] for e in env)),
        volumes=tuple(sorted(config.get("Volumes") or {})),
        workdir=str(config.get("WorkingDir") or ""),
        created=str(attrs.get("Created") or ""),
    )


def describe_image(
    client: docker.DockerClient, image_id: str, policy: ByoPolicy | None = None
) -> ImageFacts:
    """Facts of a local image for review; ``base`` is None if it extends no allowed base.

    Raises ImageGone if the image is not on this host.
    """
    policy = policy or ByoPolicy()
    return facts_of(inspect(client, image_id), resolve_bases(client, policy))


def check_image(facts: ImageFacts, policy: ByoPolicy) -> None:
    """Refuse an image that extends no allowed base, is past a cap, or declares a VOLUME."""
    if facts.base is None:
        raise ByoRefused(
            f"image {facts.image_id[:19]} is not built on an allowed base image; its layers "
            f"must start with those of one of: {allowed_text(policy)}"
        )
    if facts.volumes:
        raise ByoRefused(
            f"image {facts.image_id[:19]} declares VOLUME {', '.join(facts.volumes)}: at run time "
            "Docker would mount a writable folder outside the sandbox's limits there; remove it"
        )
    if facts.layers > policy.max_layers:
        raise ByoTooLarge(
            f"image {facts.image_id[:19]} has {facts.layers} layers, more than the "
            f"{policy.max_layers} this host allows; combine RUN steps (`RUN a && b`)"
        )
    if facts.size > policy.max_image_bytes:
        raise ByoTooLarge(
            f"image {facts.image_id[:19]} is {facts.size / MiB:.1f} MiB, larger than the "
            f"{policy.max_image_bytes / MiB:.1f} MiB this host allows; leave out what the job "
            "does not need"
        )


def remove_images(client: docker.DockerClient, image_ids: Iterable[str]) -> None:
    """Remove images c2d just made and is not keeping (children first); never their parents.

    Never forced, never pruning: an image with another tag, a child or a container stays, and
    so does every parent (an allowed base may be untagged, known only by its ID).
    """
    for image_id in reversed(list(image_ids)):
        with contextlib.suppress(docker.errors.APIError):
            client.api.remove_image(image_id, force=False, noprune=True)
