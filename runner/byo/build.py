"""Building a researcher's Dockerfile on the data host: no network, allowed bases only, capped.

Order of a build, each step refusing before anything runs where it can:

1. the context (the job's bundle) is within its cap and holds the Dockerfile;
2. the Dockerfile's ``FROM`` / ``COPY --from`` images are earlier stages or allowed bases found
   on this host, and it asks for nothing forbidden (``runner.byo.dockerfile``);
3. the Dockerfile is pinned: each base is named by the image ID just checked;
4. the classic builder runs with ``network_mode="none"``, ``pull=False``, no build arguments
   (not even the client's proxy settings), a memory cap per step, our labels, and the cache on;
5. a watcher kills the running step past the build-time cap, or when the step has written more
   than the image-size cap leaves room for (so a runaway ``RUN`` cannot fill the disk first);
6. the image passes ``check_image`` (allowed base by layer chain, size, layers, no VOLUME) and is
   tagged ``c2d/byo:<hex of its ID>``; anything a refused or failed build made is removed.
"""

from __future__ import annotations

import contextlib
import io
import queue
import threading
import time
from collections.abc import Mapping

import docker
import docker.errors
import requests

from runner.byo.buildlog import BuildLog, StreamFacts, network_trouble
from runner.byo.context import Context, context_bytes, dockerfile_path, read_dockerfile
from runner.byo.context import with_dockerfile as _with_dockerfile
from runner.byo.dockerfile import DockerfilePlan, pinned, read_plan
from runner.byo.facts import BuiltImage, check_image, facts_of, inspect, remove_images
from runner.byo.policy import (
    LABEL_BYO,
    AllowedBase,
    ByoPolicy,
    allowed_text,
    lookup,
    pin_tag,
    resolve_bases,
)
from runner.environments import Progress
from runner.errors import (
    BuildFailed,
    BuildTimedOut,
    ByoError,
    ByoRefused,
    ByoTooLarge,
    RunnerError,
    ServiceUnavailable,
)
from runner.sandbox.interface import MiB

POLL_S = 1.0
GIVE_UP_S = 60.0  # after stopping a build, how long to wait for the engine to report its end
NO_NETWORK_HINT = (
    "builds on this host have no network: put the Python packages the build needs in the job's "
    "wheels/ folder and install them with `pip install --no-index --find-links wheels ...`"
)


def _quiet(_message: str) -> None:
    pass


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


class _Build:
    """One run of the classic builder, its stream read on a thread, watched from the caller's."""

    def __init__(self, client: docker.DockerClient, policy: ByoPolicy, log: BuildLog) -> None:
        self.client = client
        self.policy = policy
        self.log = log
        self.facts = StreamFacts()
        self.failure: BaseException | None = None
        self.lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.done = threading.Event()

    def _consume(self, kwargs: dict[str, object]) -> None:
        try:
            for chunk in self.client.api.build(**kwargs):
                self.facts.feed(chunk, self.log)
                text = chunk.get("stream") or chunk.get("error")
                if isinstance(text, str) and text.strip():
                    self.lines.put(text.rstrip())
        except BaseException as exc:  # handed to the caller's thread
            self.failure = exc
        finally:
            self.done.set()

    def _written(self, container: str) -> int:
        with contextlib.suppress(docker.errors.APIError, requests.exceptions.RequestException):
            found = self.client.api.containers(all=True, size=True, filters={"id": container})
            return int(found[0].get("SizeRw") or 0) if found else 0
        return 0

    def run(self, kwargs: dict[str, object], headroom: int, progress: Progress) -> str | None:
        """Run the build; return why it was stopped ("time", "size") or None."""
        thread = threading.Thread(target=self._consume, args=(kwargs,), daemon=True)
        thread.start()
        deadline = time.monotonic() + self.policy.max_build_s
        stopped: str | None = None
        stopped_at = 0.0
        while not self.done.wait(POLL_S):
            self._relay(progress)
            running = self.facts.running
            if stopped is None and time.monotonic() >= deadline:
                stopped, stopped_at = "time", time.monotonic()
            elif stopped is None and running and self._written(running) > headroom:
                stopped, stopped_at = "size", time.monotonic()
            if stopped and running:
                with contextlib.suppress(docker.errors.APIError):
                    self.client.api.kill(running)
            if stopped and time.monotonic() - stopped_at > GIVE_UP_S:
                break  # the engine did not end the build; report it stopped all the same
        self._relay(progress)
        return stopped

    def _relay(self, progress: Progress) -> None:
        while not self.lines.empty():
            progress(self.lines.get())


def _failure(build: _Build, stopped: str | None, policy: ByoPolicy, headroom: int) -> RunnerError:
    log = build.log
    step = build.facts.step or "the start"
    if stopped == "time":
        return BuildTimedOut(
            f"the build ran longer than {policy.max_build_s} s, this host's build-time cap, and "
            f"was stopped at {step}; make the build do less (install prebuilt wheels, drop "
            "steps the job does not need)",
            build_log=log.text(),
        )
    if stopped == "size":
        return ByoTooLarge(
            f"{step} wrote more than {headroom / MiB:.1f} MiB while building, more than this "
            f"host's image-size cap ({policy.max_image_bytes / MiB:.1f} MiB) leaves room for, "
            "and was stopped; leave out what the job does not need",
            build_log=log.text(),
        )
    if isinstance(build.failure, requests.exceptions.ConnectionError):
        return ServiceUnavailable(
            "the Docker engine does not answer; start it (`make services`) and retry"
        )
    error = build.facts.error
    if error is None and isinstance(build.failure, docker.errors.APIError):
        error = str(build.failure.explanation or build.failure)
    elif error is None:
        error = repr(build.failure) if build.failure else "the engine reported no image"
    reason = f"the build failed at {step}: {error}"
    if network_trouble(log.text()):
        reason += f"; the step could not reach the network or a package index: {NO_NETWORK_HINT}"
    elif " RUN " in step:
        reason += f" (if the step downloads anything, note that {NO_NETWORK_HINT})"
    return BuildFailed(reason + "\n" + log.tail_lines(12), build_log=log.text())


def build_from_dockerfile(
    client: docker.DockerClient,
    context: Context,
    dockerfile: str = "Dockerfile",
    policy: ByoPolicy | None = None,
    *,
    labels: Mapping[str, str] | None = None,
    use_cache: bool = True,
    progress: Progress = _quiet,
) -> BuiltImage:
    """Build the job's Dockerfile on this host under ``policy``; return the kept image.

    ``context`` is the job folder (packed with the bundle's rules) or its bundle tar.
    ``labels`` are added to the image (they are part of its ID: pass only values that are the
    same every time the same job is built). ``use_cache=False`` rebuilds every step; the image
    ID then differs from the first build's (timestamps), which is why a job is pinned to the ID
    built at submission.

    Raises ByoRefused (policy), ByoInvalid (unreadable input), ByoTooLarge (caps),
    BuildFailed / BuildTimedOut (the build itself), each with the build log when one ran.
    """
    policy = policy or ByoPolicy()
    log = BuildLog(policy.max_log_bytes)
    data = context_bytes(context, policy.max_context_bytes)
    name = dockerfile_path(dockerfile)
    hint = allowed_text(policy)
    plan = read_plan(read_dockerfile(data, name), hint)
    bases = resolve_bases(client, policy)
    pins = _pin_bases(client, plan, bases, hint)
    for ref, pinned_id in pins.items():
        log.write(f"[c2d: {ref} is pinned to {pinned_id}]\n")
    used = [b for b in bases if b.image_id in pins.values()]
    headroom = policy.max_image_bytes - min(b.size for b in used)
    before = {str(i)[7:19] for i in client.api.images(all=True, quiet=True)}
    kwargs: dict[str, object] = {
        "fileobj": io.BytesIO(_with_dockerfile(data, name, pinned(plan, pins))),
        "custom_context": True,
        "dockerfile": name,
        "rm": True,
        "forcerm": True,
        "pull": False,
        "nocache": not use_cache,
        "network_mode": "none",
        "labels": {LABEL_BYO: "dockerfile", **dict(labels or {})},
        "container_limits": {
            "memory": policy.build_memory_bytes,
            "memswap": policy.build_memory_bytes,
        },
        "use_config_proxy": False,
        "decode": True,
        "timeout": policy.max_build_s + GIVE_UP_S,
    }
    progress(f"building {name} (no network; bases {', '.join(pins) or 'none'})")
    build = _Build(client, policy, log)
    stopped = build.run(kwargs, headroom, progress)
    made = [m for m in build.facts.made if m[:12] not in before]
    image_id = build.facts.image_id
    if stopped or build.failure or build.facts.error or image_id is None:
        remove_images(client, made)
        raise _failure(build, stopped, policy, headroom)
    facts = facts_of(inspect(client, image_id), bases)
    try:
        check_image(facts, policy)
    except ByoError as exc:
        if image_id[7:19] not in before:
            remove_images(client, [*made, image_id])
        exc.build_log = log.text()
        raise
    client.api.tag(image_id, *pin_tag(image_id))
    progress(f"built {image_id[:19]} ({facts.size / MiB:.0f} MiB, {facts.layers} layers)")
    return BuiltImage(source="dockerfile", facts=facts, pins=pins, build_log=log.text())
