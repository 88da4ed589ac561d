"""Loading a researcher's pre-built image (a ``docker save`` archive) on the data host.

1. The archive is within the size cap, is a plain tar, and holds exactly one image whose config
   and layer list agree (``runner.host.images.archive``); its ID, the sha256 of its config, is
   known.
2. Before loading: the layer chain in its config begins with the whole chain of an allowed base,
   and it has no more layers than the cap. The engine verifies each layer against that chain
   while loading, so the chain cannot lie about the layers' content.
3. The engine never reads the archive itself: it loads a tar c2d rebuilds from the checked
   members alone (``rebuilt_stream``: c2d's own ``manifest.json`` with no tags, the config,
   the layers), so nothing in the archive can name a tag or a second image.
4. After loading, no tag moved (``runner.host.images.tags``): none names the loaded image that
   did not before, no ``c2d/*`` tag names another image, every allowed base resolves to the ID
   it had before. Otherwise each moved tag is put back, the image is removed unless it was here
   before, and the archive is refused.
5. The image found under the expected ID passes ``check_image`` again (allowed base, size,
   layers, no VOLUME) and is tagged ``c2d/byo:<hex>``; if it fails and was not here before,
   it is removed.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import docker
import docker.errors
import requests

from runner.errors import ByoError, ByoInvalid, ByoRefused, ByoTooLarge, ServiceUnavailable
from runner.host.images import tags
from runner.host.images.archive import ArchiveImage, read_archive, rebuilt_stream
from runner.host.images.buildlog import BuildLog, StreamFacts
from runner.host.images.environments import Progress
from runner.host.images.facts import BuiltImage, check_image, facts_of, inspect, remove_images
from runner.host.images.policy import (
    AllowedBase,
    ByoPolicy,
    allowed_text,
    base_of,
    lookup,
    pin_tag,
    resolve_bases,
)
from runner.host.sandbox.interface import MiB


def _quiet(_message: str) -> None:
    pass


def _load(client: docker.DockerClient, path: Path, stream: object, log: BuildLog) -> None:
    facts = StreamFacts()
    try:
        for chunk in client.api.load_image(stream):
            facts.feed(chunk, log)
    except requests.exceptions.ConnectionError as exc:
        raise ServiceUnavailable(
            "the Docker engine does not answer; start it (`make services`) and retry"
        ) from exc
    except docker.errors.APIError as exc:
        raise ByoInvalid(
            f"the Docker engine could not load {path.name}: {exc.explanation or exc}",
            build_log=log.text(),
        ) from exc
    except (tarfile.TarError, OSError) as exc:
        raise ByoInvalid(f"{path.name} could not be read to the end: {exc}") from exc
    if facts.error:
        raise ByoInvalid(
            f"the Docker engine could not load {path.name}: {facts.error}", build_log=log.text()
        )


def _refuse_moved_tags(
    client: docker.DockerClient,
    before: dict[str, str],
    bases: tuple[AllowedBase, ...],
    image: ArchiveImage,
    existed: bool,
    log: BuildLog,
) -> None:
    """Undo and refuse a load that moved a tag (``runner.host.images.tags``); else nothing."""
    moved = tags.moved_tags(client, before, bases, image.image_id)
    if not moved:
        return
    tags.put_back(client, moved)
    if not existed:
        remove_images(client, [image.image_id])
    raise ByoRefused(
        f"the archive tried to retag an image: loading it moved {tags.describe(moved)}; "
        "every tag was put back and nothing was kept. Send the output of `docker save` for "
        "your one image, unchanged",
        build_log=log.text(),
    )


def load_archive(
    client: docker.DockerClient,
    path: Path,
    policy: ByoPolicy | None = None,
    *,
    progress: Progress = _quiet,
) -> BuiltImage:
    """Load the one image of the ``docker save`` archive at ``path``; return it pinned by ID.

    Raises ByoTooLarge (archive size, layers, image size), ByoInvalid (not one image, not a
    plain ``docker save`` tar, the engine refused it), ByoRefused (not built on an allowed base,
    declares a VOLUME, the load moved a tag). Nothing stays loaded after a refusal, and no tag
    stays moved.
    """
    policy = policy or ByoPolicy()
    path = Path(path)
    size = path.stat().st_size
    if size > policy.max_archive_bytes:
        raise ByoTooLarge(
            f"the image archive is {size / MiB:.1f} MiB, larger than the "
            f"{policy.max_archive_bytes / MiB:.1f} MiB this host accepts"
        )
    image = read_archive(path)
    bases = resolve_bases(client, policy)
    if len(image.diff_ids) > policy.max_layers:
        raise ByoTooLarge(
            f"the archive's image has {len(image.diff_ids)} layers, more than the "
            f"{policy.max_layers} this host allows; combine RUN steps and build it again"
        )
    if base_of(image.diff_ids, bases) is None:
        raise ByoRefused(
            f"the archive's image {image.image_id[:19]} is not built on an allowed base image; "
            f"build it FROM one of: {allowed_text(policy)} (nothing was loaded)"
        )
    existed = lookup(client, image.image_id) is not None
    log = BuildLog(policy.max_log_bytes)
    progress(f"loading {path.name} ({size / MiB:.0f} MiB), image {image.image_id[:19]}")
    before = tags.snapshot(client)
    try:
        _load(client, path, rebuilt_stream(path, image), log)
    except ByoError:
        _refuse_moved_tags(client, before, bases, image, existed, log)
        raise
    _refuse_moved_tags(client, before, bases, image, existed, log)
    if lookup(client, image.image_id) is None:
        raise ByoInvalid(
            f"the Docker engine did not load image {image.image_id[:19]} from {path.name}",
            build_log=log.text(),
        )
    facts = facts_of(inspect(client, image.image_id), bases)
    try:
        check_image(facts, policy)
    except ByoError as exc:
        if not existed:
            remove_images(client, [image.image_id])
        exc.build_log = log.text()
        raise
    client.api.tag(image.image_id, *pin_tag(image.image_id))
    progress(f"loaded {image.image_id[:19]} ({facts.size / MiB:.0f} MiB, {facts.layers} layers)")
    return BuiltImage(
        source="archive",
        facts=facts,
        archive_tags=image.repo_tags,
        build_log=log.text(),
    )
