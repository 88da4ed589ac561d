"""Turning what a run left behind into a ``RunResult``: the same rules for every executor."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runner.artifacts import ArtifactStore
from runner.errors import OutputRejected
from runner.host.sandbox import reasons
from runner.host.sandbox.collector import OutputPolicy, collect_outputs
from runner.host.sandbox.interface import RunResult, SandboxSpec


@dataclass(frozen=True)
class RunFacts:
    """What an executor read from a stopped container, before looking at its outputs."""

    exit_code: int | None
    oom: bool
    timed_out: bool
    timeout_s: int
    duration_s: float
    log: bytes
    log_truncated: bool
    outputs_full: bool = False
    fsize_limit: int | None = None


def policy_for(spec: SandboxSpec) -> OutputPolicy:
    """The collector's rules for ``spec``: its declared outputs within its output limits."""
    limits = spec.limits
    return OutputPolicy(
        patterns=spec.outputs,
        max_files=limits.max_output_files,
        max_file_bytes=limits.outputs_bytes,
        max_total_bytes=limits.outputs_bytes,
        max_metrics=limits.max_metrics,
    )


def result_of(
    spec: SandboxSpec, facts: RunFacts, outputs_root: Path, store: ArtifactStore
) -> RunResult:
    """The job's result; outputs are collected into ``store`` only from a clean exit.

    An output problem gives a failed result whose reason is the collector's
    (``output rejected: ...``), and nothing of the job stays in the store.
    """
    reason = reasons.outcome_reason(
        exit_code=facts.exit_code,
        oom=facts.oom,
        timed_out=facts.timed_out,
        timeout_s=facts.timeout_s,
        memory_bytes=spec.limits.memory_bytes,
        outputs_full=facts.outputs_full,
        outputs_bytes=spec.limits.outputs_bytes,
        fsize_limit=facts.fsize_limit,
    )
    result = RunResult(
        exit_code=facts.exit_code,
        oom=facts.oom,
        timed_out=facts.timed_out,
        reason=reason,
        duration_s=facts.duration_s,
        log=facts.log,
        log_truncated=facts.log_truncated,
        # A full /outputs fails the run even after exit code 0: a file may be cut short.
        rejected=facts.outputs_full,
    )
    if not result.succeeded:
        return result
    try:
        got = collect_outputs(outputs_root, policy_for(spec), store)
    except OutputRejected as exc:
        return RunResult(
            exit_code=facts.exit_code,
            oom=facts.oom,
            timed_out=facts.timed_out,
            reason=str(exc),
            duration_s=facts.duration_s,
            log=facts.log,
            log_truncated=facts.log_truncated,
            rejected=True,
        )
    return RunResult(
        exit_code=facts.exit_code,
        oom=facts.oom,
        timed_out=facts.timed_out,
        reason=reason,
        duration_s=facts.duration_s,
        outputs=got.outputs,
        metrics=got.metrics,
        log=facts.log,
        log_truncated=facts.log_truncated,
        ignored=got.ignored,
    )
