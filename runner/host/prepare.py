"""Making a submitted job's own image on the data host that will run it (task ``c2d.prepare``).

The control plane holds no Docker engine; a submission that brings its own image waits while
its dataset's data host makes it (``runner.control.api.preparing``). Here the host fetches the
bundle and, for an archive, the archive (each hashed while copied, kept only if it is the
digest asked for), builds the Dockerfile (``runner.host.images.build``: every step sandboxed,
no network) or loads the archive (``runner.host.images.load``) on its own engine under its own
``ByoPolicy``, and answers the image's record, or the error that stopped it with the error's
kind and message (a failed build's message carries its log, which is the researcher's own code
running on no data).
"""

from __future__ import annotations

import logging

from jobs.errors import JobsError, NotFound
from jobs.images import ImageRecord, log_digest
from ledger.kinds import kind_of
from runner.errors import RunnerError, ServiceUnavailable, TryLater
from runner.host.context import HostContext
from runner.host.engine import byo_policy_from
from runner.host.images import BuildCache, BuiltImage, build_from_dockerfile, load_archive

log = logging.getLogger(__name__)


def make_image(ctx: HostContext, inputs: dict[str, object]) -> ImageRecord:
    """Build or load the image ``inputs`` describe (a preparation's) and return its record."""
    bundle_digest = str(inputs["bundle_digest"])
    dockerfile = inputs.get("dockerfile")
    archive_digest = inputs.get("archive_digest")
    prep_id = str(inputs["id"])
    client = ctx.docker()
    policy = byo_policy_from(ctx.settings)
    built: BuiltImage
    if archive_digest:
        archive = ctx.control.fetch_preparation(
            prep_id, "archive", str(archive_digest), ctx.artifacts
        )
        built = load_archive(client, archive, policy)
    else:
        bundle = ctx.control.fetch_preparation(prep_id, "bundle", bundle_digest, ctx.artifacts)
        built = build_from_dockerfile(
            client,
            bundle.read_bytes(),
            dockerfile=str(dockerfile or "Dockerfile"),
            policy=policy,
            cache=BuildCache(ctx.settings.build_cache_dir),
        )
    return ImageRecord(
        bundle_digest=bundle_digest,
        image_id=built.image_id,
        source=built.source,
        dockerfile=str(dockerfile) if dockerfile and not archive_digest else None,
        archive_sha256=str(archive_digest) if archive_digest else None,
        build_log_digest=log_digest(built.build_log),
        details=built.model_dump(mode="json"),
    )


def prepare(ctx: HostContext, prep_id: str) -> str:
    """Answer preparation ``prep_id``: the image's record, or why none was made."""
    try:
        inputs = ctx.control.preparation(prep_id)
    except NotFound as exc:
        log.info("%s: nothing to prepare: %s", prep_id, exc)
        return "skipped"
    except ServiceUnavailable as exc:
        raise TryLater(f"{prep_id}: the control plane does not answer: {exc}") from exc
    try:
        record = make_image(ctx, inputs)
    except ServiceUnavailable as exc:
        ctx.control.answer_preparation(prep_id, error=("unavailable", str(exc)))
        return "unavailable"
    except (JobsError, RunnerError) as exc:
        log.info("%s: no image: %s", prep_id, exc)
        ctx.control.answer_preparation(prep_id, error=(kind_of(exc).value, str(exc)))
        return "refused"
    ctx.control.answer_preparation(prep_id, record=record)
    log.info("%s: image %s made", prep_id, record.image_id[:19])
    return "made"
