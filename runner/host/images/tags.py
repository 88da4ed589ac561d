"""The engine's tags around a load: a load that moved one is caught, undone and refused.

The stream c2d loads names no tag (``runner.host.images.archive.rebuilt_stream``), so loading it
should leave every tag where it was. This checks that anyway, after the fact, in case an engine
finds a tag where c2d did not think to look (the containerd image store reads ``index.json``
annotations, for one). ``snapshot`` notes every tag before the load; ``moved_tags`` finds, after
it, each tag that:

- names the loaded image now and did not before (other than c2d's own ``c2d/byo:<hex>``, which
  a concurrent load of the same image may add), or
- is under ``c2d/`` and names another image than before, or
- is an allowed base's name that no longer resolves to the ID it had.

Only these, so that tags other people move on a shared engine during the load are no reason to
refuse. ``put_back`` tags each moved tag's image again and removes a tag that is new.
"""

from __future__ import annotations

import contextlib
import re

import docker
import docker.errors
import docker.utils

from runner.host.images.policy import AllowedBase, lookup, pin_tag

_ID_REF_RE = re.compile(r"^(?:sha256:)?[0-9a-f]{12,64}$")
WATCHED_PREFIX = "c2d/"


def snapshot(client: docker.DockerClient) -> dict[str, str]:
    """Every tag on the engine (``repo:tag``) and the image ID it names."""
    tags: dict[str, str] = {}
    for image in client.api.images():
        for ref in image.get("RepoTags") or ():
            if ref != "<none>:<none>":
                tags[str(ref)] = str(image["Id"])
    return tags


def moved_tags(
    client: docker.DockerClient,
    before: dict[str, str],
    bases: tuple[AllowedBase, ...],
    loaded_id: str,
) -> dict[str, str | None]:
    """The tags a load of ``loaded_id`` moved: each with the ID it named before (None: new)."""
    pin = ":".join(pin_tag(loaded_id))
    moved: dict[str, str | None] = {}
    for ref, image_id in snapshot(client).items():
        old = before.get(ref)
        if old == image_id or ref == pin:
            continue
        if image_id == loaded_id or (old is not None and ref.startswith(WATCHED_PREFIX)):
            moved[ref] = old
    for base in bases:
        if _ID_REF_RE.match(base.ref) or "@" in base.ref:
            continue  # an ID or a digest names the same image whatever a load does
        if lookup(client, base.ref) != base.image_id:
            moved.setdefault(_full(base.ref), base.image_id)
    return moved


def _full(ref: str) -> str:
    repo, tag = docker.utils.parse_repository_tag(ref)
    return f"{repo}:{tag or 'latest'}"


def put_back(client: docker.DockerClient, moved: dict[str, str | None]) -> None:
    """Tag each moved tag's former image again; remove each tag that did not exist before.

    Removing a new tag never removes an image that has another tag (``noprune``, not forced).
    """
    for ref, old in moved.items():
        repo, tag = docker.utils.parse_repository_tag(ref)
        with contextlib.suppress(docker.errors.APIError):
            if old is None:
                client.api.remove_image(ref, force=False, noprune=True)
            else:
                client.api.tag(old, repo, tag or "latest")


def describe(moved: dict[str, str | None]) -> str:
    """The moved tags as a message lists them."""
    return ", ".join(
        f"{ref} (was {old[:19]})" if old else f"{ref} (new)" for ref, old in sorted(moved.items())
    )
