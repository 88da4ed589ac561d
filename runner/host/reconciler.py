"""A data host's own reconciler: what is on its engine and disk that no job of it needs.

It runs every ``Settings.reconcile_s`` beside the host's worker (a thread) and is safe with
several running at once: every removal tolerates "already gone". One pass:

1. **Outbox**: outcomes the control plane did not take yet are sent again
   (``runner.host.delivery.flush``), and the host says hello (its environments, and whether
   its Docker engine answered a ping: the control plane's readiness reports it).
2. **Reaping**: containers labelled ``c2d.job`` of this host's jobs that are no longer live (or
   overdue past their deadline), their folders, and leftover code folders (``runner.host.reaper``);
   a job the control plane does not know (another installation's, on the same engine) is left.
3. **Images**: jobs' own images untouched for ``Settings.byo_retention_s``, never one a
   pending, approved or running job binds, nor an allowed base.

Which jobs are live is the control plane's word (the host asks it); what is on this host is
the host's.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from jobs.errors import NotFound
from jobs.host_records import HostEnvironment
from jobs.states import JobState
from runner.errors import ImageError, ServiceUnavailable
from runner.host.context import HostContext
from runner.host.delivery import flush
from runner.host.dryrun import dryrun_id
from runner.host.engine import byo_policy_from
from runner.host.reaper import reap

log = logging.getLogger(__name__)

STALE_EXTRACTION_S = 3600.0
LIVE = frozenset({JobState.APPROVED, JobState.RUNNING})


@dataclass
class Pass:
    """What one pass did (for logs and tests)."""

    delivered: int = 0
    reaped: list[str] = field(default_factory=list)
    images_removed: list[str] = field(default_factory=list)


def environments(ctx: HostContext) -> dict[str, HostEnvironment]:
    """The environments this host offers: those built here, with their image IDs and pins."""
    from runner.host.images.environments import LABEL_PINS, known_environments

    found: dict[str, HostEnvironment] = {}
    for name in known_environments():
        with contextlib.suppress(Exception):  # not built here (yet): not offered
            image_id = ctx.resolve_image(name)
            labels = ctx.docker().images.get(image_id).labels or {}
            pins = json.loads(labels.get(LABEL_PINS, "{}"))
            found[name] = HostEnvironment(image_id=image_id, pins=pins)
    return found


def engine_answers(ctx: HostContext) -> bool:
    """Whether this host's Docker engine answers a ping (cheap: no image or container is
    listed). Any failure, the engine's or the socket's, is a no."""
    try:
        return bool(ctx.docker().ping())
    except Exception:
        return False


class Reconciler:
    """One data host's reconciler; ``run_once`` is one pass, ``start`` runs passes in a thread."""

    def __init__(
        self,
        ctx: HostContext,
        *,
        clock: Callable[[], float] = time.time,
        reap_containers: bool = True,
        agent: str = "",
    ) -> None:
        self.ctx = ctx
        self.clock = clock
        self.reap_containers = reap_containers
        self.agent = agent
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._engine_ok: bool | None = None

    def _engine(self) -> bool:
        """``engine_answers``, logged when it changes (not every pass)."""
        ok = engine_answers(self.ctx)
        if ok != self._engine_ok and not ok:
            log.warning("the Docker engine does not answer; no job runs here until it does")
        elif ok != self._engine_ok and self._engine_ok is not None:
            log.info("the Docker engine answers again")
        self._engine_ok = ok
        return ok

    def run_once(self) -> Pass:
        done = Pass()
        try:
            self.ctx.control.hello(environments(self.ctx), self.agent, self._engine())
            done.delivered = flush(self.ctx)
        except ServiceUnavailable as exc:
            log.warning("the control plane does not answer (outcomes wait here): %s", exc)
        if self.reap_containers:
            self._reap(done)
        return done

    def _live(self, job_id: str) -> bool:
        dryrun = job_id.endswith(dryrun_id(""))
        try:
            job = self.ctx.control.job(job_id.removesuffix(dryrun_id("")) if dryrun else job_id)
        except NotFound:
            # Containers of job ids the control plane does not give this host belong to
            # another installation (or a test) on the same engine: not ours to remove.
            return True
        except ServiceUnavailable:
            return True  # when in doubt, keep
        return job.state in (LIVE | {JobState.PENDING} if dryrun else LIVE)

    def _reap(self, done: Pass) -> None:
        try:
            done.reaped = reap(
                self.ctx.docker(), self._live, self.clock(), work_root=self.ctx.settings.work_dir
            )
        except Exception as exc:
            log.warning("reaper pass failed (retried next pass): %s", exc)
        try:
            done.images_removed = self._remove_old_images()
        except Exception as exc:
            log.warning("image clean-up failed (retried next pass): %s", exc)
        code_root = self.ctx.settings.code_dir
        now = self.clock()
        for folder in code_root.iterdir() if code_root.is_dir() else []:
            if folder.name.startswith("."):
                # A half-done extraction whose worker died; live ones take seconds.
                if now - folder.stat().st_mtime > STALE_EXTRACTION_S:
                    shutil.rmtree(folder, ignore_errors=True)
                continue
            if not self._live(folder.name):
                shutil.rmtree(folder, ignore_errors=True)

    def _remove_old_images(self) -> list[str]:
        from runner.host.images import remove_unused_images
        from runner.host.images.policy import resolve_bases

        client = self.ctx.docker()
        in_use = self.ctx.control.images_in_use()
        with contextlib.suppress(ImageError):
            in_use |= {
                b.image_id for b in resolve_bases(client, byo_policy_from(self.ctx.settings))
            }
        return remove_unused_images(
            client, in_use, older_than_s=self.ctx.settings.byo_retention_s, now=self.clock()
        )

    def loop(self) -> None:
        while not self._stop.is_set():
            try:
                result = self.run_once()
                if result.reaped:
                    log.info("reaped %s", ", ".join(result.reaped))
            except Exception:
                log.exception("host reconciler pass failed; retrying next pass")
            self._stop.wait(self.ctx.settings.reconcile_s)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.loop, name="c2d-host-reconciler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
