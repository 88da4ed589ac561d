"""Jobs that misbehave inside their container, and a job whose process is killed from outside.

One installation for the module (API, a worker of concurrency 2, a Redis of its own). Each
case runs a real job in a real container, checks how it ended, then checks the suite's four
invariants (``fault_kit.check_invariants``).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
from fault_invariants import check_invariants
from fault_kit import FaultStack, job_folder, running_container

from tests.kit.procs import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.redis, pytest.mark.slow, pytest.mark.faults]

MEMORY_HOG = """\
chunks = []
while True:
    chunks.append(b"x" * (16 * 1024 * 1024))  # written, so every page is really used
"""

FILL_OUTPUTS = """\
with open("/outputs/big.bin", "wb") as f:
    for _ in range(160):
        f.write(b"y" * 65536)  # 10 MiB into a 1 MiB /outputs: ENOSPC ends the job
        f.flush()
"""

LOG_FLOOD = """\
import json, pathlib, sys
line = "z" * 1023 + "\\n"
for _ in range(32 * 1024):  # 32 MiB on stdout; the log keeps 1 MiB
    sys.stdout.write(line)
sys.stdout.flush()
pathlib.Path("/outputs/metrics.json").write_text(json.dumps({"lines": 32768}))
"""


def run(stack: FaultStack, folder: Path) -> dict[str, Any]:
    stack.ensure("worker", concurrency=2)
    job_id = stack.submit(folder)
    stack.approve(job_id)
    return stack.wait_ended(job_id, timeout=120)


def test_a_job_that_exhausts_its_memory_fails_as_oom(stack, workdir, docker_client):
    job = run(stack, job_folder(workdir / "hog", MEMORY_HOG, memory="64MiB"))

    assert job["state"] == "failed", job
    assert job["outcome"]["oom"] is True, job
    assert "out of memory" in job["reason"], job["reason"]
    check_invariants(stack, [job["id"]], docker_client, workdir)


def test_a_job_past_its_deadline_is_killed_and_fails(stack, workdir, docker_client):
    script = "import time\nprint('sleeping', flush=True)\ntime.sleep(300)\n"
    job = run(stack, job_folder(workdir / "late", script, timeout="3s"))

    assert job["state"] == "failed", job
    assert job["outcome"]["timed_out"] is True, job
    assert "timed out after 3 s" in job["reason"], job["reason"]
    check_invariants(stack, [job["id"]], docker_client, workdir)


def test_outputs_filled_past_their_cap_fail_the_job(stack, workdir, docker_client):
    folder = job_folder(workdir / "fill", FILL_OUTPUTS, outputs="1MiB", declared=("big.bin",))
    job = run(stack, folder)

    assert job["state"] == "failed", job
    assert "/outputs was full (limit 1 MiB)" in job["reason"], job["reason"]
    assert job["outcome"]["outputs"] == [], job  # nothing of a failed job leaves
    check_invariants(stack, [job["id"]], docker_client, workdir)


def test_a_flood_of_logs_is_capped_and_the_job_still_succeeds(stack, workdir, docker_client):
    job = run(stack, job_folder(workdir / "flood", LOG_FLOOD))

    assert job["state"] == "released", job
    assert job["outcome"]["log_truncated"] is True, job  # the ledger has only its digest
    assert stack.people is not None
    with stack.client(stack.people.owner_token) as owner:
        text, truncated = owner.logs(job["id"])
    assert truncated is True
    assert len(text.encode()) <= 1024 * 1024 + 4096  # the cap plus c2d's note of the cut
    check_invariants(stack, [job["id"]], docker_client, workdir)


def _children(pid: int) -> list[int]:
    """Child processes of ``pid`` (every thread's), from /proc."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def test_sigkill_of_the_jobs_process_fails_the_job_once(stack, workdir, docker_client):
    """The worker runs jobs in threads, so its only "child" mid-job is the job's process.

    A Celery prefork pool would have a pool child to kill; c2d's worker has none (asserted
    below, so this case is revisited if that changes). The process that does the work is the
    job's, started by the engine; killing it (as the host's OOM killer or an operator would)
    must end the job once, as failed, with the signal named.
    """
    worker = stack.ensure("worker", concurrency=2)
    job_id = stack.submit(job_folder(workdir / "victim", "import time\ntime.sleep(300)\n"))
    stack.wait_dryrun(job_id)  # so the worker is busy with this job alone
    stack.approve(job_id)
    container = wait_for(
        "the job's container to run",
        lambda: running_container(docker_client, job_id),
        60,
        stack.logs(),
    )
    assert _children(worker.popen.pid) == [], "the worker has child processes now; kill one"
    top = container.top(ps_args="-eo pid,args")
    pids = [int(pid) for pid, args in top["Processes"] if args == "python3 run.py"]
    assert len(pids) == 1, top
    os.kill(pids[0], signal.SIGKILL)

    job = stack.wait_ended(job_id, timeout=60)
    assert job["state"] == "failed", job
    assert "exited with code 137 (signal 9, SIGKILL)" in job["reason"], job["reason"]
    assert worker.alive()
    check_invariants(stack, [job_id], docker_client, workdir)
