"""Host limits, and the check that a job's resources fit the dataset's caps and the host's."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from jobs.bundle import DEFAULT_MAX_BYTES, DEFAULT_MAX_FILES
from jobs.errors import LimitExceeded
from jobs.models import Caps
from jobs.spec import Resources
from jobs.units import format_duration, format_size

GiB = 1024**3


@dataclass(frozen=True)
class Limits:
    """What this c2d host allows any job, whatever a dataset policy says.

    Built from settings at the entry point; the defaults suit a small single machine.
    """

    max_cpus: float = 4.0
    max_memory: int = 16 * GiB
    max_timeout: int = 24 * 3600
    max_outputs: int = 1 * GiB
    max_params_bytes: int = 64 * 1024
    max_bundle_files: int = DEFAULT_MAX_FILES
    max_bundle_bytes: int = DEFAULT_MAX_BYTES


_FORMAT: dict[str, Callable[[float], str]] = {
    "cpus": lambda v: f"{v:g} CPUs",
    "memory": lambda v: format_size(int(v)),
    "timeout": lambda v: format_duration(int(v)),
    "outputs": lambda v: format_size(int(v)),
}


def check_resources(resources: Resources, caps: Caps, limits: Limits, dataset: str) -> None:
    """Raise ``LimitExceeded`` naming the first field above the dataset cap or host limit."""
    host = {
        "cpus": limits.max_cpus,
        "memory": limits.max_memory,
        "timeout": limits.max_timeout,
        "outputs": limits.max_outputs,
    }
    for field, host_cap in host.items():
        requested: float = getattr(resources, field)
        show = _FORMAT[field]
        dataset_cap: float | None = getattr(caps, field)
        if dataset_cap is not None and requested > dataset_cap:
            raise LimitExceeded(
                field, show(requested), show(dataset_cap), f"the policy of dataset {dataset!r}"
            )
        if requested > host_cap:
            raise LimitExceeded(field, show(requested), show(host_cap), "this c2d host")
