"""The sentences a person reads when a job ends: what happened and, where we know, why.

Kept in one place so the Docker executor and the fake say exactly the same things.
"""

from __future__ import annotations

import signal

_UNITS = (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024))


def human_bytes(n: int) -> str:
    """``536870912`` -> ``512 MiB``; ``1610612736`` -> ``1.5 GiB``; ``1000`` -> ``1000 bytes``."""
    for name, factor in _UNITS:
        if n >= factor:
            if n % factor == 0:
                return f"{n // factor} {name}"
            return f"{n / factor:.1f} {name}"
    return f"{n} bytes"


def _signal_name(number: int) -> str | None:
    try:
        return signal.Signals(number).name
    except ValueError:
        return None


def exit_reason(exit_code: int, *, fsize_limit: int | None = None) -> str:
    """``exited with code 3``; codes above 128 also name the signal they usually mean."""
    reason = f"exited with code {exit_code}"
    if exit_code > 128:
        name = _signal_name(exit_code - 128)
        if name:
            reason += f" (signal {exit_code - 128}, {name})"
            if name == "SIGXFSZ" and fsize_limit is not None:
                reason += f": a file grew past the file size limit of {human_bytes(fsize_limit)}"
    return reason


def outcome_reason(
    *,
    exit_code: int | None,
    oom: bool,
    timed_out: bool,
    timeout_s: int,
    memory_bytes: int,
    outputs_full: bool = False,
    outputs_bytes: int = 0,
    fsize_limit: int | None = None,
) -> str:
    """The reason of a run before its outputs are looked at (timeout, then OOM, then exit)."""
    if timed_out:
        return f"killed: timed out after {timeout_s} s"
    if oom:
        return f"killed: out of memory (limit {human_bytes(memory_bytes)})"
    if exit_code is None:
        return "ended without an exit code; the container was lost"
    reason = exit_reason(exit_code, fsize_limit=fsize_limit)
    if outputs_full:
        # Even after exit code 0: a file the job was writing when the disk filled is cut short.
        reason = (
            f"/outputs was full (limit {human_bytes(outputs_bytes)}): the job tried to write "
            f"more than its output limit, so its outputs may be cut short ({reason})"
        )
    return reason
