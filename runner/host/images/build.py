"""Building a researcher's Dockerfile on the data host, step by step, each step sandboxed.

Order of a build, each refusing before anything runs where it can:

1. the context (the job's bundle) is within its cap and holds the Dockerfile;
2. the Dockerfile is read by the engine's own parser and held to c2d's dialect
   (``runner.host.images.dockerfile``): no ADD, no directive but ``escape``, no flags but COPY's
   ``--from``/``--chown``/``--chmod``, bases and ``COPY --from`` images allowed or earlier stages;
3. each external image is resolved on this host and must be an allowed base; it is used by ID;
4. the steps run one by one (``runner.host.images.steps``): every RUN in a container with no network
   and the job sandbox's defaults, under the host's runtime; a watcher kills a step past the
   build's deadline or once it has written more than the image-size cap leaves room for;
5. the finished image's history must be its base's plus exactly one entry per step, in order,
   each naming that step; it then passes ``check_image`` (allowed base by layer chain, size,
   layers, no VOLUME) and is tagged ``c2d/byo:<hex of its ID>``. Anything a refused or failed
   build made is removed.

A step's result is cached (``BuildCache``) under the digest of everything it depends on: the
image it starts from, the step, the config so far and, for COPY, the bytes it adds. The same job
folder therefore rebuilds to the same image ID, which is what lets trust in a code digest
(bundle + image) carry over to a resubmission.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import posixpath
import queue
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import IO

import docker
import docker.errors
import requests

from jobs.digests import canonical_digest
from runner.errors import (
    BuildFailed,
    BuildTimedOut,
    ByoRefused,
    ByoTooLarge,
    ServiceUnavailable,
)
from runner.host.images.build_context import (
    Context,
    context_bytes,
    dockerfile_path,
    read_dockerfile,
)
from runner.host.images.buildlog import BuildLog, network_trouble
from runner.host.images.copying import context_index, from_context, from_image
from runner.host.images.dockerfile import (
    DockerfilePlan,
    Stage,
    Step,
    describe,
    exec_form,
    read_plan,
)
from runner.host.images.environments import Progress
from runner.host.images.facts import BuiltImage, check_image, facts_of, inspect, remove_images
from runner.host.images.policy import (
    LABEL_BYO,
    AllowedBase,
    ByoPolicy,
    allowed_text,
    lookup,
    pin_tag,
    resolve_bases,
)
from runner.host.images.steps import NOP, ImageConfig, StepContainer, remove_leftovers
from runner.host.sandbox.interface import MiB

POLL_S = 0.5
NO_NETWORK_HINT = (
    "builds on this host have no network: put the Python packages the build needs in the job's "
    "wheels/ folder and install them with `pip install --no-index --find-links wheels ...`"
)
CONFIG_STEPS = frozenset({"ENV", "LABEL", "USER", "CMD", "ENTRYPOINT", "SHELL"})


def _quiet(_message: str) -> None:
    pass


class BuildCache:
    """Step results of earlier builds: cache key -> image ID, one small file per key.

    Kept in the host's state folder and written only by the builder, so an image that merely
    claims to be a cached step (an uploaded archive carrying a label, say) is never taken for
    one; a hit is used only while that image is still on the engine.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def get(self, client: docker.DockerClient, key: str) -> str | None:
        """The image the step made before, if it is still here."""
        try:
            image_id = (self.folder / key.removeprefix("sha256:")).read_text().strip()
        except OSError:
            return None
        return image_id if lookup(client, image_id) == image_id else None

    def put(self, key: str, image_id: str) -> None:
        """Remember that the step ``key`` made ``image_id`` (atomically)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        temp = self.folder / f".{key[7:]}.{os.getpid()}.{threading.get_ident()}"
        temp.write_text(image_id)
        temp.replace(self.folder / key.removeprefix("sha256:"))


def _pin_bases(
    client: docker.DockerClient, plan: DockerfilePlan, bases: tuple[AllowedBase, ...], hint: str
) -> dict[str, str]:
    allowed = {b.image_id for b in bases}
    pins: dict[str, str] = {}
    for use in plan.uses:
        image_id = lookup(client, use.ref)
        if image_id is None or image_id not in allowed:
            why = "is not on this host" if image_id is None else "is not an allowed base image"
            raise ByoRefused(
                f"line {use.line}: {use.how} {use.ref} {why}; builds may start only from an "
                f"allowed base image: {hint} (or an earlier stage of the same Dockerfile)"
            )
        pins[use.ref] = image_id
    return pins


class _Builder:
    """One build: runs the plan's stages in order, keeps the log, counts what it made."""

    def __init__(
        self,
        client: docker.DockerClient,
        policy: ByoPolicy,
        progress: Progress,
        cache: BuildCache | None,
        use_cache: bool,
        labels: dict[str, str],
    ) -> None:
        self.client = client
        self.policy = policy
        self.progress = progress
        self.cache = cache
        self.use_cache = use_cache
        self.labels = labels
        self.log = BuildLog(policy.max_log_bytes)
        self.deadline = time.monotonic() + policy.max_build_s
        self.made: list[str] = []
        self.headroom = policy.max_image_bytes
        self.total = 0
        self.number = 0
        self.current = ""

    def say(self, text: str) -> None:
        self.log.write(text + "\n")
        self.progress(text)

    def begin(self, line: str) -> None:
        self.number += 1
        self.current = f"Step {self.number}/{self.total} : {line}"
        self.say(self.current)

    def stage(
        self, stage: Stage, index: dict[str, object], images: list[str], pins: Mapping[str, str]
    ) -> tuple[str, list[str]]:
        """Run one stage; return its image and the history comments its steps wrote."""
        image = pins[stage.base] if isinstance(stage.base, str) else images[stage.base]
        self.begin(" ".join(stage.text.split()))
        self.say(f" ---> {image[7:19]}")
        config = ImageConfig.of(inspect(self.client, image)).with_labels(self.labels)
        comments: list[str] = []
        for step in stage.steps:
            self.begin(describe(step))
            image, config = self.step(step, image, config, index, images, pins)
            comments.append(describe(step))
            self.say(f" ---> {image[7:19]}")
        return image, comments

    def step(
        self,
        step: Step,
        image: str,
        config: ImageConfig,
        index: dict[str, object],
        images: list[str],
        pins: Mapping[str, str],
    ) -> tuple[str, ImageConfig]:
        new = _configured(step, config)
        source = None
        if step.source is not None:
            source = pins[step.source] if isinstance(step.source, str) else images[step.source]
        key_parts: dict[str, object] = {
            "parent": image,
            "step": [step.keyword, list(step.args), step.json, step.chown, step.chmod, source],
            "config": config.as_key(),
        }
        command = exec_form(step, config.shell) if step.keyword == "RUN" else None
        nop = ["/bin/sh", "-c", NOP + describe(step)]
        container = StepContainer(self.client, image, config, command or nop, new.workdir)
        try:
            if step.keyword == "COPY":
                container.create()
                with self.copy_tar(step, config, container, index, source) as tar:
                    key_parts["content"] = _digest(tar)
                    if (hit := self.cached(key_parts)) is not None:
                        return hit, new
                    container.put(tar)
            else:
                if (hit := self.cached(key_parts)) is not None:
                    return hit, new
                container.create(self.policy if command else None)
                if command:
                    self.run(container)
            made = container.commit(new, describe(step))
        except docker.errors.APIError as exc:
            raise BuildFailed(
                f"the build failed at {self.current}: {exc.explanation or exc}\n"
                + self.log.tail_lines(12),
                build_log=self.log.text(),
            ) from exc
        finally:
            container.remove()
        self.made.append(made)
        if self.cache is not None:
            self.cache.put(canonical_digest(key_parts), made)
        return made, new

    def cached(self, key_parts: dict[str, object]) -> str | None:
        if self.cache is None or not self.use_cache:
            return None
        hit = self.cache.get(self.client, canonical_digest(key_parts))
        if hit is not None:
            self.say(" ---> Using cache")
        return hit

    def copy_tar(
        self,
        step: Step,
        config: ImageConfig,
        container: StepContainer,
        index: dict[str, object],
        source: str | None,
    ) -> IO[bytes]:
        if source is None:
            return from_context(step, index, config.workdir, container.exists, self.headroom)  # type: ignore[arg-type]
        donor = StepContainer(self.client, source, ImageConfig(), ["/bin/sh", "-c", NOP + "export"])
        try:
            donor.create()
            src = posixpath.normpath(posixpath.join("/", step.args[0]))
            try:
                exported, _ = self.client.api.get_archive(donor.id, src)
            except docker.errors.NotFound as exc:
                raise BuildFailed(
                    f"the build failed at {self.current}: {src} is not in the image it copies from"
                ) from exc
            return from_image(step, exported, config.workdir, container.exists, self.headroom)
        finally:
            donor.remove()

    def run(self, container: StepContainer) -> None:
        """Start a RUN step's container and watch it to its end; raise if it did not succeed."""
        api = self.client.api
        lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        api.start(container.id)
        reader = threading.Thread(target=self._read_log, args=(container.id, lines), daemon=True)
        reader.start()
        stopped: str | None = None
        status: int | None = None
        while status is None:
            with contextlib.suppress(requests.exceptions.RequestException):
                status = int(api.wait(container.id, timeout=POLL_S)["StatusCode"])
            self._relay(lines)
            if status is None and stopped is None:
                stopped = self._over(container.id)
                if stopped:
                    with contextlib.suppress(docker.errors.APIError):
                        api.kill(container.id)
        reader.join(timeout=5)
        self._relay(lines)
        if stopped == "time":
            raise BuildTimedOut(
                f"the build ran longer than {self.policy.max_build_s} s, this host's build-time "
                f"cap, and was stopped at {self.current}; make the build do less (install "
                "prebuilt wheels, drop steps the job does not need)",
                build_log=self.log.text(),
            )
        if stopped == "size":
            raise ByoTooLarge(
                f"{self.current} wrote more than {self.headroom / MiB:.1f} MiB while building, "
                f"more than this host's image-size cap ({self.policy.max_image_bytes / MiB:.1f}"
                " MiB) leaves room for, and was stopped; leave out what the job does not need",
                build_log=self.log.text(),
            )
        if status != 0:
            try:
                oom = bool(api.inspect_container(container.id)["State"].get("OOMKilled"))
            except docker.errors.NotFound:
                # Not the step's own doing: say so, rather than "No such container".
                raise BuildFailed(
                    f"the build failed at {self.current}: its container was removed while it "
                    f"ran (status {status}) by something outside this build; submit again\n"
                    + self.log.tail_lines(12),
                    build_log=self.log.text(),
                ) from None
            raise self._failed(status, oom)

    def _over(self, container_id: str) -> str | None:
        if time.monotonic() >= self.deadline:
            return "time"
        with contextlib.suppress(docker.errors.APIError, requests.exceptions.RequestException):
            found = self.client.api.containers(all=True, size=True, filters={"id": container_id})
            if found and int(found[0].get("SizeRw") or 0) > self.headroom:
                return "size"
        return None

    def _read_log(self, container_id: str, lines: queue.SimpleQueue[str]) -> None:
        with contextlib.suppress(docker.errors.APIError, requests.exceptions.RequestException):
            for chunk in self.client.api.logs(container_id, stream=True, follow=True):
                text = chunk.decode("utf-8", "replace")
                self.log.write(text)
                if text.strip():
                    lines.put(text.rstrip())

    def _relay(self, lines: queue.SimpleQueue[str]) -> None:
        while not lines.empty():
            self.progress(lines.get())

    def _failed(self, status: int, oom: bool) -> BuildFailed:
        if oom:
            why = (
                f"it ran out of memory (each build step may use "
                f"{self.policy.build_memory_bytes / MiB:.0f} MiB)"
            )
        else:
            why = f"the command returned exit code {status}"
        reason = f"the build failed at {self.current}: {why}"
        if network_trouble(self.log.text()):
            reason += (
                f"; the step could not reach the network or a package index: {NO_NETWORK_HINT}"
            )
        else:
            reason += (
                f" (if the step downloads anything, note that {NO_NETWORK_HINT}; steps run "
                "without capabilities, so chown and useradd fail: use COPY --chown)"
            )
        return BuildFailed(reason + "\n" + self.log.tail_lines(12), build_log=self.log.text())


def _configured(step: Step, config: ImageConfig) -> ImageConfig:
    """The config after ``step`` (unchanged for RUN and COPY)."""
    keyword, args = step.keyword, step.args
    if keyword == "ENV":
        return config.with_env(dict(zip(args[::2], args[1::2], strict=True)))
    if keyword == "LABEL":
        return config.with_labels(dict(zip(args[::2], args[1::2], strict=True)))
    if keyword == "USER":
        return replace(config, user=args[0])
    if keyword == "WORKDIR":
        return replace(
            config, workdir=posixpath.normpath(posixpath.join(config.workdir or "/", args[0]))
        )
    if keyword == "SHELL":
        return replace(config, shell=tuple(args))
    if keyword == "CMD":
        return replace(config, cmd=tuple(exec_form(step, config.shell)))
    if keyword == "ENTRYPOINT":
        return replace(config, entrypoint=tuple(exec_form(step, config.shell)))
    return config


def _digest(tar: IO[bytes]) -> str:
    hasher = hashlib.sha256()
    while chunk := tar.read(1024 * 1024):
        hasher.update(chunk)
    tar.seek(0)
    return "sha256:" + hasher.hexdigest()


def _check_history(client: docker.DockerClient, image: str, base: str, comments: list[str]) -> None:
    """The image's history is the base's plus one entry per step, each naming its step."""
    history = client.api.history(image)
    ours = [str(h.get("Comment") or "") for h in history[: len(comments)]][::-1]
    rest = [(h.get("CreatedBy"), h.get("Comment")) for h in history[len(comments) :]]
    expected = [(h.get("CreatedBy"), h.get("Comment")) for h in client.api.history(base)]
    if ours != ["c2d: " + c for c in comments] or rest != expected:
        raise ByoRefused(
            f"image {image[:19]}'s history does not match its Dockerfile's steps; it was not "
            "kept (report this to the host's administrator)"
        )


def build_from_dockerfile(
    client: docker.DockerClient,
    context: Context,
    dockerfile: str = "Dockerfile",
    policy: ByoPolicy | None = None,
    *,
    labels: Mapping[str, str] | None = None,
    cache: BuildCache | None = None,
    use_cache: bool = True,
    progress: Progress = _quiet,
) -> BuiltImage:
    """Build the job's Dockerfile on this host under ``policy``; return the kept image.

    ``context`` is the job folder (packed with the bundle's rules) or its bundle tar.
    ``labels`` are added to the image (they are part of its ID: pass only values that are the
    same every time the same job is built). ``cache`` remembers step results, so the same
    folder rebuilds to the same ID; ``use_cache=False`` ignores it (the ID then differs: each
    step's config records when it ran).

    Raises ByoRefused (policy), ByoInvalid (unreadable input), ByoTooLarge (caps),
    BuildFailed / BuildTimedOut (the build itself), each with the build log when one ran.
    """
    policy = policy or ByoPolicy()
    data = context_bytes(context, policy.max_context_bytes)
    name = dockerfile_path(dockerfile)
    hint = allowed_text(policy)
    plan = read_plan(read_dockerfile(data, name), hint)
    try:
        bases = resolve_bases(client, policy)
        pins = _pin_bases(client, plan, bases, hint)
        remove_leftovers(client, 2 * policy.max_build_s + 60, time.time())
    except requests.exceptions.ConnectionError as exc:
        raise ServiceUnavailable(
            "the Docker engine does not answer; start it (`make services`) and retry"
        ) from exc
    builder = _Builder(
        client, policy, progress, cache, use_cache, {LABEL_BYO: "dockerfile", **(labels or {})}
    )
    for ref, pinned_id in pins.items():
        builder.say(f"[c2d: {ref} is pinned to {pinned_id}]")
    used = [b for b in bases if b.image_id in pins.values()]
    builder.headroom = policy.max_image_bytes - min(b.size for b in used)
    builder.total = plan.step_count
    progress(
        f"building {name} (no network, each step sandboxed; bases {', '.join(pins) or 'none'})"
    )
    index = context_index(data)
    images: list[str] = []
    try:
        for stage in plan.stages:
            image, comments = builder.stage(stage, index, images, pins)  # type: ignore[arg-type]
            images.append(image)
        builder.say(f"Successfully built {images[-1][7:19]}")
        final = plan.stages[-1]
        base = pins[final.base] if isinstance(final.base, str) else images[final.base]
        _check_history(client, images[-1], base, comments)
        facts = facts_of(inspect(client, images[-1]), bases)
        check_image(facts, policy)
    except requests.exceptions.ConnectionError as exc:
        remove_images(client, builder.made)
        raise ServiceUnavailable(
            "the Docker engine does not answer; start it (`make services`) and retry"
        ) from exc
    except BaseException as exc:
        remove_images(client, builder.made)
        if hasattr(exc, "build_log") and not getattr(exc, "build_log", ""):
            exc.build_log = builder.log.text()
        raise
    client.api.tag(images[-1], *pin_tag(images[-1]))
    progress(f"built {images[-1][:19]} ({facts.size / MiB:.0f} MiB, {facts.layers} layers)")
    return BuiltImage(source="dockerfile", facts=facts, pins=pins, build_log=builder.log.text())
