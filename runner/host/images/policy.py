"""What a data host allows researchers' own images to be: which bases, and how big.

``ByoPolicy`` is the operator's configuration (built from settings at the entry point and passed
in). ``resolve_bases`` turns its allowed bases, names or image IDs, into the images present on
this host right now, each with its layer chain (the ``RootFS`` diff IDs). An image "extends an
allowed base" when its own layer chain starts with the whole chain of that base: layers are
content-addressed, so this holds exactly when the image was built on top of that base's
filesystem, whatever its name or tag says.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import docker
import docker.errors
from pydantic import BaseModel, ConfigDict, Field, field_validator

from runner.errors import ImageError
from runner.host.images.environments import image_tag

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

DEFAULT_BASE = image_tag("python-ml")
BYO_REPOSITORY = "c2d/byo"
"""Every image built or loaded here is tagged ``c2d/byo:<64 hex of its ID>``: the tag keeps it
from being pruned as dangling, marks it for ``remove_unused_images``, and never collides with a
tag someone else owns."""
LABEL_BYO = "org.c2d.byo"

IMAGE_ID_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
# A local image reference: name[:tag][@digest], or an image ID with or without "sha256:". Strict,
# because the string ends up in an Engine API URL path.
_REF_RE = re.compile(
    r"^(?:sha256:[0-9a-f]{12,64}|[0-9a-f]{12,64}|"
    r"[a-z0-9][a-z0-9._-]*(?::[0-9]+)?(?:/[a-z0-9][a-z0-9._-]*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?)$"
)


def is_reference(text: str) -> bool:
    """Whether ``text`` is a plausible local image name or ID (no variables, no path tricks)."""
    return bool(_REF_RE.match(text)) and ".." not in text and "//" not in text


class ByoPolicy(BaseModel):
    """The host's rules for researchers' images. Every cap is always on.

    ``allowed_bases`` are image names (``c2d/python-ml:latest``) or IDs (``sha256:...``); a
    name is looked up locally each time a build or load is checked, so re-tagging a name (a new
    ``make image``) moves what it allows.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    allowed_bases: tuple[str, ...] = (DEFAULT_BASE,)
    max_build_s: int = Field(default=900, ge=1, description="wall clock of one build")
    max_image_bytes: int = Field(default=4 * GiB, ge=1, description="size of the whole image")
    max_layers: int = Field(default=64, ge=1, le=127, description="layers of the whole image")
    max_archive_bytes: int = Field(default=4 * GiB, ge=1, description="`docker save` archive")
    max_context_bytes: int = Field(default=256 * MiB, ge=1, description="build context (tar)")
    build_memory_bytes: int = Field(default=2 * GiB, ge=6 * MiB, description="per build step")
    build_cpus: float = Field(default=1.0, gt=0, le=64, description="CPU share of a build step")
    build_pids: int = Field(default=512, ge=16, description="processes of a build step")
    runtime: Literal["runc", "runsc"] = Field(default="runc", description="as jobs run")
    max_log_bytes: int = Field(default=256 * KiB, ge=1024, description="build log kept")

    @field_validator("allowed_bases")
    @classmethod
    def _check_bases(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("allow at least one base image (the default environment's)")
        for ref in value:
            if not is_reference(ref):
                raise ValueError(f"{ref!r} is not an image name or ID")
        return value


@dataclass(frozen=True)
class AllowedBase:
    """An allowed base as found on this host: the policy's name for it, its ID and layers."""

    ref: str
    image_id: str
    diff_ids: tuple[str, ...]
    size: int

    def label(self) -> str:
        """How messages name it: ``c2d/python-ml:latest (sha256:cfafc30c766b)``."""
        short = self.image_id[:19]
        return self.ref if self.ref == self.image_id else f"{self.ref} ({short})"


def allowed_text(policy: ByoPolicy) -> str:
    """The allowed bases as a message lists them."""
    return ", ".join(policy.allowed_bases)


def _inspect(client: docker.DockerClient, ref: str) -> dict[str, object] | None:
    try:
        attrs: dict[str, object] = client.api.inspect_image(ref)
    except docker.errors.ImageNotFound:
        return None
    except docker.errors.APIError as exc:
        if exc.status_code in (400, 404):  # a malformed name is as absent as an unknown one
            return None
        raise
    return attrs


def diff_ids_of(attrs: dict[str, object]) -> tuple[str, ...]:
    """The layer chain (RootFS diff IDs) of an inspected image."""
    rootfs = attrs.get("RootFS")
    layers = rootfs.get("Layers") if isinstance(rootfs, dict) else None
    return tuple(str(x) for x in layers or ())


def resolve_bases(client: docker.DockerClient, policy: ByoPolicy) -> tuple[AllowedBase, ...]:
    """The allowed bases present on this host, in policy order, without duplicates.

    Raises ImageError when none is present: nothing can be built or loaded until the operator
    builds one (``make image``).
    """
    found: dict[str, AllowedBase] = {}
    for ref in policy.allowed_bases:
        attrs = _inspect(client, ref)
        if attrs is None:
            continue
        image_id = str(attrs["Id"])
        if image_id not in found:
            size = attrs.get("Size")
            found[image_id] = AllowedBase(
                ref, image_id, diff_ids_of(attrs), size if isinstance(size, int) else 0
            )
    if not found:
        raise ImageError(
            f"none of the allowed base images ({allowed_text(policy)}) is on this host; "
            "build the default environment first (`make image`)"
        )
    return tuple(found.values())


def lookup(client: docker.DockerClient, ref: str) -> str | None:
    """The local image ID ``ref`` names, or None; never pulls."""
    if not is_reference(ref):
        return None
    attrs = _inspect(client, ref)
    return None if attrs is None else str(attrs["Id"])


def base_of(diff_ids: Sequence[str], bases: Iterable[AllowedBase]) -> AllowedBase | None:
    """The allowed base whose whole layer chain begins ``diff_ids``; the longest one wins.

    A base with no layers at all would be a prefix of everything, so it never matches.
    """
    best: AllowedBase | None = None
    for base in bases:
        n = len(base.diff_ids)
        if n and tuple(diff_ids[:n]) == base.diff_ids and (best is None or n > len(best.diff_ids)):
            best = base
    return best


def pin_tag(image_id: str) -> tuple[str, str]:
    """Repository and tag under which c2d keeps a researcher's image."""
    if not IMAGE_ID_RE.match(image_id):
        raise ValueError(f"{image_id!r} is not a full image ID (sha256:<64 hex>)")
    return BYO_REPOSITORY, image_id.removeprefix("sha256:")
