"""Bad input at the API's door: an upload cut by the API's death, malformed specs and bundles.

One installation for the module (API, a worker, a Redis of its own). None of these may leave
a job, a ledger entry, a stored blob or a half-received upload behind; then the four
invariants hold (with no job of the case's own, the canary carries them).
"""

from __future__ import annotations

import io
import json
import tarfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from fault_invariants import check_invariants
from fault_kit import FaultStack, job_folder, sleeper

from jobs.bundle import pack
from jobs.spec import JobSpec
from runner.artifacts import ArtifactStore
from runner.errors import ApiError

pytestmark = [pytest.mark.docker, pytest.mark.redis, pytest.mark.slow, pytest.mark.faults]

MiB = 1024 * 1024


def snapshot(stack: FaultStack) -> tuple[list[str], int, set[str]]:
    """Jobs, ledger size and every file under the artifact store and the uploads folder."""
    files = {
        str(p.relative_to(stack.home))
        for folder in ("artifacts", "uploads")
        for p in (stack.home / folder).rglob("*")
        if p.is_file()
    }
    return stack.job_ids(), stack.ledger_size(), files


def valid_spec(stack: FaultStack, folder: Path) -> dict[str, Any]:
    assert stack.people is not None
    spec = JobSpec.from_yaml(folder / "job.yaml").with_overrides(dataset=stack.people.dataset)
    return spec.model_dump(mode="json")


def tar_of(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for info, data in members:
            info.size = len(data) if info.type == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(data) if info.type == tarfile.REGTYPE else None)
    return buffer.getvalue()


def member(name: str, kind: bytes = tarfile.REGTYPE, target: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def test_the_api_killed_during_a_bundle_upload_keeps_nothing(stack, workdir, docker_client):
    stack.ensure("worker")
    assert stack.people is not None
    before = snapshot(stack)
    token = stack.people.researcher_token
    folder = job_folder(workdir / "upload", sleeper(0))
    spec = json.dumps(valid_spec(stack, folder)).encode()
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="spec"\r\n\r\n'.encode()
        + spec
        + f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="bundle"; '
        'filename="bundle.tar"\r\nContent-Type: application/x-tar\r\n\r\n'.encode()
    )
    tail = f"\r\n--{boundary}--\r\n".encode()
    chunks = 40
    halfway = threading.Event()

    def body() -> Any:
        yield head
        for n in range(chunks):
            yield b"\0" * MiB
            if n == 5:
                halfway.set()
            time.sleep(0.05)
        yield tail

    outcome: dict[str, Any] = {}

    def upload() -> None:
        try:
            outcome["response"] = httpx.post(
                f"{stack.url}/v1/jobs",
                content=body(),
                headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": f"multipart/form-data; boundary={boundary}",
                    "Content-Length": str(len(head) + chunks * MiB + len(tail)),
                },
                timeout=60,
            )
        except httpx.HTTPError as exc:
            outcome["error"] = exc

    sender = threading.Thread(target=upload)
    sender.start()
    assert halfway.wait(30)
    server = stack.live("server")[0]
    server.kill()  # SIGKILL: no handler, no clean-up, mid-body
    sender.join(60)

    assert "response" not in outcome, outcome  # the upload never completed
    assert snapshot(stack) == before  # no job, no entry, no blob, no upload left
    stack.start_server()
    check_invariants(stack, [], docker_client, workdir)


def test_a_malformed_job_yaml_is_refused_and_leaves_nothing(stack, workdir, docker_client):
    stack.ensure("worker")
    assert stack.people is not None
    people = stack.people
    before = snapshot(stack)
    folder = job_folder(workdir / "bad-yaml", sleeper(0))
    spec_file = folder / "job.yaml"

    def submit_with_cli() -> Any:
        args = ("submit", str(folder), "--dataset", people.dataset, "--json")
        return stack.cli(*args, token=people.researcher_token)

    spec_file.write_text("name: [unclosed\ncommand: python3\n")
    done = submit_with_cli()
    assert done.returncode == 2, done
    assert "job.yaml" in done.stderr

    spec_file.write_text("name: bad\ncommand: []\nresources: {memory: lots}\n")
    done = submit_with_cli()
    assert done.returncode == 2, done
    assert "memory" in done.stderr or "command" in done.stderr, done.stderr

    # The API does not rely on the CLI's check: a bad spec sent straight to it is refused.
    bad = {"name": "bad", "command": [], "dataset": people.dataset, "surprise": True}
    with stack.client(people.researcher_token) as client, pytest.raises(ApiError) as refused:
        client.submit(bad, pack(folder).data)
    assert (refused.value.kind, refused.value.status) == ("invalid", 422)

    assert snapshot(stack) == before
    check_invariants(stack, [], docker_client, workdir)


BAD_BUNDLES = {
    "not a tar": b"this is not a tar archive\n" * 100,
    "a path out of the folder": tar_of((member("../escape.py"), b"print(1)\n")),
    "a symlink": tar_of(
        (member("run.py"), b"print(1)\n"), (member("data", tarfile.SYMTYPE, "/data"), b"")
    ),
    "a device": tar_of((member("run.py"), b"print(1)\n"), (member("tty", tarfile.CHRTYPE), b"")),
    "a truncated tar": tar_of((member("run.py"), b"print(1)\n" * 200))[:700],
}


def test_malformed_bundles_are_refused_and_leave_nothing(stack, workdir, docker_client):
    stack.ensure("worker")
    assert stack.people is not None
    before = snapshot(stack)
    spec = valid_spec(stack, job_folder(workdir / "bad-bundle", sleeper(0)))
    with stack.client(stack.people.researcher_token) as client:
        for what, bundle in BAD_BUNDLES.items():
            with pytest.raises(ApiError) as refused:
                client.submit(spec, bundle)
            assert (refused.value.kind, refused.value.status) == ("invalid", 422), what

    assert snapshot(stack) == before
    check_invariants(stack, [], docker_client, workdir)


def test_a_bundle_altered_after_approval_never_runs(stack, workdir, docker_client):
    """The stored bundle changes between submit and run: the worker's re-hash refuses it.

    The reason tells the researcher to submit again; doing so with the same code must work,
    so the store has to take the intact bytes back rather than keep the altered file.
    """
    stack.ensure("worker")
    since = time.time()
    folder = job_folder(workdir / "altered", sleeper(0) + "# altered-bundle case\n")
    job_id = stack.submit(folder)
    stack.wait_dryrun(job_id)  # the host fetched the bundle for it: its copy is altered too
    digest = stack.api_job(job_id)["code_digest"]
    for store in (stack.home / "artifacts", stack.host_home / "artifacts"):
        blob = ArtifactStore(store).path(digest)
        blob.chmod(0o600)
        blob.write_bytes(tar_of((member("run.py"), b"print('not what was approved')\n")))
    stack.approve(job_id)
    job = stack.wait_ended(job_id, timeout=60)

    assert job["state"] == "failed", job
    assert "code" in job["reason"], job["reason"]
    created = docker_client.events(
        since=int(since) - 1,
        until=int(time.time()) + 1,
        filters={"type": "container", "event": "create", "label": f"c2d.job={job_id}"},
        decode=True,
    )
    assert list(created) == []  # no container ever started
    assert "submitted and approved again" in job["reason"], job["reason"]

    again = stack.submit(folder)  # the same code, as the reason says
    stack.approve(again)
    assert stack.wait_ended(again, timeout=60)["state"] == "released", stack.logs()
    check_invariants(stack, [job_id, again], docker_client, workdir)
