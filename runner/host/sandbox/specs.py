"""From a job to the sandbox it runs in: one builder for the worker, the dry run and the local run.

``limits_for`` turns a job's resources (already capped by the service) into the sandbox's
``Limits``, with the host's /tmp and the dataset's cap on metrics; ``sandbox_spec`` puts them
together with what each caller decides: the container's id, the image, the code folder and the
data mounted at ``/data/NAME`` (the real dataset, or mock data).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from jobs.models import DEFAULT_MAX_METRICS
from jobs.spec import JobSpec
from jobs.units import parse_size
from runner.host.sandbox.interface import Limits, Runtime, SandboxSpec
from runner.settings import Settings


@dataclass(frozen=True)
class Sandboxing:
    """The host settings the sandbox uses (``C2D_RUNTIME``, uid, gid, the size of /tmp)."""

    runtime: Runtime = "runc"
    uid: int = 65534
    gid: int = 65534
    tmp_size: str = "256MiB"

    @classmethod
    def of(cls, settings: Settings) -> Sandboxing:
        """The sandbox settings of a data host."""
        return cls(settings.runtime, settings.sandbox_uid, settings.sandbox_gid, settings.tmp_size)


def limits_for(spec: JobSpec, tmp_size: str, max_metrics: int = DEFAULT_MAX_METRICS) -> Limits:
    """The sandbox limits of a job: its resources, the host's /tmp (never more than its
    memory) and the dataset's cap on metrics."""
    res = spec.resources
    return Limits(
        cpus=res.cpus,
        memory_bytes=res.memory,
        timeout_s=res.timeout,
        outputs_bytes=res.outputs,
        tmp_bytes=min(parse_size(tmp_size), res.memory),
        max_metrics=max_metrics,
    )


def sandbox_spec(
    spec: JobSpec,
    *,
    sandbox_id: str,
    image_id: str,
    code_dir: Path,
    datasets: Mapping[str, Path],
    sandboxing: Sandboxing,
    max_metrics: int = DEFAULT_MAX_METRICS,
    timeout_cap_s: int | None = None,
    live_log: bool = False,
) -> SandboxSpec:
    """The sandbox of one run of ``spec``; ``timeout_cap_s`` shortens its deadline (dry runs);
    ``live_log`` publishes its output as it comes (``SandboxSpec.live_log``)."""
    limits = limits_for(spec, sandboxing.tmp_size, max_metrics)
    if timeout_cap_s is not None:
        limits = dataclasses.replace(limits, timeout_s=min(limits.timeout_s, timeout_cap_s))
    return SandboxSpec(
        job_id=sandbox_id,
        image_id=image_id,
        command=tuple(spec.command),
        code_dir=code_dir,
        datasets=dict(datasets),
        params=spec.params,
        outputs=tuple(spec.outputs),
        limits=limits,
        runtime=sandboxing.runtime,
        uid=sandboxing.uid,
        gid=sandboxing.gid,
        live_log=live_log,
    )
