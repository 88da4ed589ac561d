"""The four invariants every fault case ends with: ``check_invariants(stack, job_ids, ...)``.

1. each job has exactly one terminal state: it is in an end state, its ledger holds exactly
   one ending entry (``job.finished``, ``job.rejected`` or ``job.cancelled``) and that entry
   agrees with the state; so at most one ``job.finished``;
2. ``c2d ledger verify --home`` (the real CLI) passes;
3. no container labelled ``c2d.job`` of this installation's jobs (or their dry runs) is
   left, nor an outputs mount under its work folder (containers of other installations on the
   same engine are not this suite's business);
4. a fresh canary job, submitted and approved with the real CLI, still runs to success.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from fault_kit import CANARY, ENDED, FaultStack, job_containers, job_folder

from tests.kit.procs import wait_for

ENDING_ENTRIES = frozenset({"job.finished", "job.rejected", "job.cancelled"})


def outputs_mounts(stack: FaultStack) -> list[str]:
    """Mount points under the installation's work folder (the jobs' /outputs filesystems)."""
    work = str(stack.host_home / "work")
    return [
        line.split()[1]
        for line in Path("/proc/self/mounts").read_text().splitlines()
        if line.split()[1].startswith(work)
    ]


def check_one_ending(stack: FaultStack, job_id: str) -> str:
    """Invariant 1 for one job; return its end state."""
    state = stack.state(job_id)
    entries = stack.entries(job_id)
    types = [e["type"] for e in entries]
    assert state in ENDED, f"job {job_id} is {state}, not ended; entries {types}\n{stack.logs()}"
    endings = [e for e in entries if e["type"] in ENDING_ENTRIES]
    assert len(endings) == 1, f"job {job_id}: ending entries {types}"
    assert types.count("job.finished") <= 1, types
    ending = endings[0]
    expected = {
        "job.rejected": {"rejected"},
        "job.cancelled": {"cancelled"},
    }.get(ending["type"])
    if expected is None:  # job.finished: succeeded (maybe released since) or failed
        recorded = ending["body"]["state"]
        expected = {"succeeded", "released"} if recorded == "succeeded" else {recorded}
    assert state in expected, f"job {job_id} is {state} but its ledger says {ending}"
    return state


def verify_ledger(stack: FaultStack) -> None:
    """Invariant 2: the real ``c2d ledger verify`` on the installation's database."""
    done = stack.cli("ledger", "verify", "--home", str(stack.home), "--json")
    assert done.returncode == 0, f"ledger verify failed:\n{done.stdout}\n{done.stderr}"
    report = json.loads(done.stdout)
    assert report.get("ok") is True, report


def check_nothing_left(stack: FaultStack, docker_client: Any, timeout: float = 45.0) -> None:
    """Invariant 3: no container of this installation's jobs and no outputs mount remain.

    The worker removes them when it finishes a job and the reaper removes what a lost worker
    left, so this waits (bounded) for that to happen.
    """
    ids = stack.job_ids()
    wait_for(
        f"the containers of jobs {ids} to be removed",
        lambda: not job_containers(docker_client, ids),
        timeout,
        stack.logs(),
    )
    wait_for(
        "the outputs mounts to be removed",
        lambda: not outputs_mounts(stack),
        timeout,
        f"{outputs_mounts(stack)}\n{stack.logs()}",
    )


def run_canary(stack: FaultStack, tmp: Path) -> str:
    """Invariant 4: a fresh job, submitted and approved with the CLI, runs to success."""
    assert stack.people is not None
    people = stack.people
    tag = uuid.uuid4().hex[:6]
    folder = job_folder(tmp / f"canary-{tag}", CANARY + f"# canary {tag}\n")  # fresh code
    submitted = stack.cli_json(
        "submit", str(folder), "--dataset", people.dataset, token=people.researcher_token
    )
    job_id = str(submitted["id"])
    stack.cli_json("approve", job_id, token=people.owner_token)
    job = stack.wait_ended(job_id, timeout=120)
    assert job["state"] == "released", f"canary {job_id}: {job}\n{stack.logs()}"
    status = stack.cli_json("status", job_id, token=people.researcher_token)
    assert status["outcome"]["metrics"] == {"slept": 0}, status
    return job_id


def check_invariants(
    stack: FaultStack, job_ids: list[str], docker_client: Any, tmp: Path
) -> dict[str, str]:
    """The four invariants after a fault (module docstring); return each job's end state."""
    ends = {job_id: check_one_ending(stack, job_id) for job_id in job_ids}
    verify_ledger(stack)
    check_nothing_left(stack, docker_client)
    canary = run_canary(stack, tmp)
    check_one_ending(stack, canary)
    verify_ledger(stack)
    check_nothing_left(stack, docker_client)
    return ends
