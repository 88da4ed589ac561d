"""Removing researchers' images once no job needs them, after a retention period.

The images this module manages are the ones ``build`` and ``load`` keep: tagged
``c2d/byo:<hex of the ID>`` (and, for builds, labelled ``org.c2d.byo``; a labelled build the
process could not tag, being dangling, is found by its label). Nothing else is ever touched, and
an image is only ever untagged from ``c2d/byo``: if someone else also tagged it, it stays.

Retention counts from the last time c2d touched the image: built, loaded, or seen in use by
``remove_unused_images`` (which re-tags each in-use image, so the engine's ``LastTagTime``
moves). Call it periodically (the reaper's loop is a good place) with the IDs of every job that
is pending, approved or running; an image leaves ``older_than_s`` after its last such job did.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import docker
import docker.errors

from runner.host.images.policy import BYO_REPOSITORY, LABEL_BYO, pin_tag

_STAMP_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


def engine_time(text: object) -> float:
    """Unix time of one of the engine's RFC 3339 stamps (nanoseconds, any zone); 0 if none."""
    if not isinstance(text, str) or text.startswith("0001-"):
        return 0.0
    match = _STAMP_RE.match(text)
    if match is None:
        return 0.0
    main, frac, zone = match.groups()
    stamp = f"{main}.{(frac or '0')[:6].ljust(6, '0')}{'+00:00' if zone == 'Z' else zone}"
    return datetime.fromisoformat(stamp).timestamp()


def last_touched(attrs: dict[str, Any]) -> float:
    """When c2d last built, loaded, tagged or saw the image in use (engine time, Unix)."""
    metadata = attrs.get("Metadata") or {}
    return max(engine_time(attrs.get("Created")), engine_time(metadata.get("LastTagTime")))


def _managed(client: docker.DockerClient) -> Iterable[str]:
    """IDs of the images this module manages, each once."""
    ids = [str(i["Id"]) for i in client.api.images(name=BYO_REPOSITORY)]
    dangling = client.api.images(filters={"label": LABEL_BYO, "dangling": True})
    ids += [str(i["Id"]) for i in dangling]
    return dict.fromkeys(ids)


def _full(image_id: str) -> str:
    return image_id if image_id.startswith("sha256:") else f"sha256:{image_id}"


def remove_unused_images(
    client: docker.DockerClient, in_use: set[str], older_than_s: float, now: float
) -> list[str]:
    """Remove c2d's researcher images untouched for ``older_than_s``; return the removed IDs.

    ``in_use`` holds the full image IDs of every pending, approved or running job: those are
    never removed, and their retention clock restarts. Add the allowed bases' IDs to it too:
    an untagged base is then safe from the removal of the build intermediates above it. An
    image a container still uses, or one with another tag, is left (that is not an error).
    ``now`` is Unix time on this host.
    """
    keep = {_full(i) for i in in_use}
    removed: list[str] = []
    for image_id in _managed(client):
        try:
            attrs = client.api.inspect_image(image_id)
        except docker.errors.ImageNotFound:
            continue
        ours = [t for t in attrs.get("RepoTags") or [] if t.startswith(f"{BYO_REPOSITORY}:")]
        if image_id in keep:
            client.api.tag(image_id, *pin_tag(image_id))  # restarts its retention clock
            continue
        if now - last_touched(attrs) < older_than_s:
            continue
        if _remove(client, image_id, ours, attrs.get("Parent"), keep):
            removed.append(image_id)
    return removed


def _remove(
    client: docker.DockerClient, image_id: str, ours: list[str], parent: object, keep: set[str]
) -> bool:
    """Remove an image by c2d's tag (or ID), then its build's untagged parents; True if it went.

    The engine's own pruning would also take an untagged parent that is an allowed base known
    only by ID; this walk stops at any image in ``keep``, any tagged image, and any image the
    engine will not remove unforced (it has another child or a container).
    """
    try:
        for name in ours or [image_id]:
            client.api.remove_image(name, force=False, noprune=True)
        client.api.inspect_image(image_id)
        return False  # someone else's tag keeps it
    except docker.errors.APIError as exc:
        if exc.status_code == 409:  # a container (or a child image) still needs it
            return False
        if exc.status_code != 404:
            raise
    while isinstance(parent, str) and parent and parent not in keep:
        try:
            attrs = client.api.inspect_image(parent)
            if any(t != "<none>:<none>" for t in attrs.get("RepoTags") or []):
                break
            client.api.remove_image(parent, force=False, noprune=True)
        except docker.errors.APIError:
            break
        parent = attrs.get("Parent")
    return True
