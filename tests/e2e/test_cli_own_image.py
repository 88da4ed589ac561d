"""Bring your own container, as researcher and owner use it through the CLI, API and worker.

A job folder whose Dockerfile installs a vendored wheel is built on the data host at submit,
reviewed (Dockerfile, base, USER), approved and run; a disallowed FROM and a two-image archive
are refused at submit with nothing stored; a job whose approved image is gone at run time fails
with a reason and never starts a container.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import subprocess
import tarfile
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.kit.recorder import Recorder

if TYPE_CHECKING:
    from tests.kit.installation import Installation

pytestmark = [pytest.mark.docker, pytest.mark.redis, pytest.mark.slow, pytest.mark.timeout(600)]

WHEEL_DOCKERFILE = (
    "FROM c2d/python-ml:latest\n"
    "USER root\n"
    "COPY wheels /tmp/wheels\n"
    "RUN pip install --no-index --find-links /tmp/wheels --break-system-packages {name} \\\n"
    "    && rm -rf /tmp/wheels\n"
    "USER 65534:65534\n"
)
TRAIN = (
    "import json, os, {name}\n"
    "json.dump({{'value': {name}.VALUE, 'uid': os.getuid()}}, open('/outputs/metrics.json', 'w'))\n"
)


def _wheel(folder: Path, name: str) -> None:
    """A pure-Python wheel written by hand (``import NAME`` gives ``VALUE = 42``)."""
    dist = f"{name}-1.0.dist-info"
    files = {
        f"{name}/__init__.py": b"VALUE = 42\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: c2d-e2e\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    files[f"{dist}/RECORD"] = ("\n".join([*record, f"{dist}/RECORD,,"]) + "\n").encode()
    folder.mkdir(parents=True)
    with zipfile.ZipFile(folder / f"{name}-1.0-py3-none-any.whl", "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)


def _job_folder(root: Path, dockerfile: str, train: str = "print('hi')\n") -> Path:
    folder = root / f"job-{uuid.uuid4().hex[:6]}"
    folder.mkdir(parents=True)
    (folder / "job.yaml").write_text(
        "name: own-image\ncommand: [python3, train.py]\nimage: {build: Dockerfile}\n"
        "resources: {memory: 512MiB, timeout: 5m}\n"
    )
    (folder / "Dockerfile").write_text(dockerfile)
    (folder / "train.py").write_text(train)
    return folder


def _blobs(stack: Installation) -> set[str]:
    return {str(p) for p in (stack.home / "artifacts").rglob("*") if p.is_file()}


def _byo_images(docker_client: Any) -> set[str]:
    return {i.id for i in docker_client.images.list(name="c2d/byo")}


@pytest.fixture
def people(c2d_stack: Installation, patients_dir: Path) -> tuple[str, str, str]:
    """An owner's token, a researcher's token and a fresh dataset of the owner's, released on
    success (these tests are about images, not the owner's review of outputs)."""
    _, owner = c2d_stack.add_user("owner", "owen")
    _, researcher = c2d_stack.add_user("researcher", "rhea")
    dataset = f"patients-{uuid.uuid4().hex[:6]}"
    c2d_stack.json(
        "dataset", "add", dataset, str(patients_dir), "--release-on-success", token=owner
    )
    return owner, researcher, dataset


@pytest.fixture
def made_images(docker_client: Any) -> Iterator[set[str]]:
    """Image IDs a test made; removed (forced) afterwards."""
    made: set[str] = set()
    yield made
    for image_id in made:
        subprocess.run(["docker", "rmi", "-f", image_id], capture_output=True, check=False)


def test_a_dockerfile_job_is_built_reviewed_approved_and_uses_its_wheel(
    c2d_stack: Installation, people: tuple[str, str, str], tmp_path: Path, made_images: set[str]
) -> None:
    stack = c2d_stack
    owner, researcher, dataset = people
    name = f"c2dtiny{uuid.uuid4().hex[:6]}"
    folder = _job_folder(tmp_path, WHEEL_DOCKERFILE.format(name=name), TRAIN.format(name=name))
    _wheel(folder / "wheels", name)

    job = stack.json("submit", str(folder), "--dataset", dataset, token=researcher, timeout=600)
    made_images.add(job["image_id"])
    assert job["state"] == "pending"
    assert job["code_digest"] != job["image_id"]

    review = stack.json("review", job["id"], token=owner)
    image = review["image"]
    assert image["source"] == "dockerfile"
    assert image["dockerfile_text"] == WHEEL_DOCKERFILE.format(name=name)
    assert "+FROM c2d/python-ml:latest" in image["dockerfile_diff"]
    assert image["facts"]["image_id"] == job["image_id"]
    assert image["facts"]["base"] == "c2d/python-ml:latest"
    assert image["facts"]["user"] == "65534:65534"
    assert f"Successfully installed {name}-1.0" in image["build_log"]
    people_view = stack.c2d("review", job["id"], token=owner)
    assert people_view.returncode == 0, people_view.stderr
    for shown in ("base", "c2d/python-ml:latest", "USER", "65534:65534", "the sandbox resets it"):
        assert shown in people_view.stderr

    # The researcher reads the same build log.
    mine = stack.json("job-image", job["id"], token=researcher)
    assert mine["build_log"] == image["build_log"]

    stack.json("approve", job["id"], token=owner)
    done = stack.json("status", job["id"], "--wait", token=researcher, timeout=300)
    assert done["state"] in {"succeeded", "released"}, (done, stack.logs())
    assert done["outcome"]["metrics"] == {"value": 42.0, "uid": 65534.0}


def test_a_disallowed_base_is_refused_at_submit_and_nothing_is_stored(
    c2d_stack: Installation, people: tuple[str, str, str], tmp_path: Path, docker_client: Any
) -> None:
    stack = c2d_stack
    _, researcher, dataset = people
    folder = _job_folder(tmp_path, "FROM c2d/debian-python:bookworm\nRUN true\n")
    blobs, images = _blobs(stack), _byo_images(docker_client)

    refused = stack.c2d("submit", str(folder), "--dataset", dataset, token=researcher)
    assert refused.returncode == 4, refused.stderr  # not allowed
    assert "c2d/debian-python:bookworm is not an allowed base image" in refused.stderr
    assert "c2d/python-ml:latest" in refused.stderr  # the allowed one is named
    assert stack.json("jobs", token=researcher) == []
    assert _blobs(stack) == blobs
    assert _byo_images(docker_client) == images


def test_a_built_image_is_removed_when_the_job_is_not_recorded(
    c2d_stack: Installation, people: tuple[str, str, str], tmp_path: Path, docker_client: Any
) -> None:
    stack = c2d_stack
    _, researcher, _ = people
    folder = _job_folder(
        tmp_path, f"FROM c2d/python-ml:latest\nLABEL e2e.lost={uuid.uuid4().hex}\n"
    )
    blobs, images = _blobs(stack), _byo_images(docker_client)

    refused = stack.c2d("submit", str(folder), "--dataset", "no-such-dataset", token=researcher)
    assert refused.returncode == 3, refused.stderr  # the dataset is not found, after the build
    assert stack.json("jobs", token=researcher) == []
    assert _blobs(stack) == blobs
    assert _byo_images(docker_client) == images


def test_a_build_that_tries_the_network_fails_with_the_reason_and_nothing_is_stored(
    c2d_stack: Installation, people: tuple[str, str, str], tmp_path: Path, docker_client: Any
) -> None:
    stack = c2d_stack
    _, researcher, dataset = people
    folder = _job_folder(
        tmp_path,
        "FROM c2d/python-ml:latest\n"
        f'RUN echo {uuid.uuid4().hex} && python3 -c "import socket; '
        "socket.create_connection(('192.0.2.1', 80), timeout=5)\"\n",
    )
    blobs, images = _blobs(stack), _byo_images(docker_client)

    refused = stack.c2d("submit", str(folder), "--dataset", dataset, token=researcher)
    assert refused.returncode == 1, refused.stderr  # the build failed
    assert "no network" in refused.stderr
    assert "wheels/" in refused.stderr  # what to do instead
    assert stack.json("jobs", token=researcher) == []
    assert _blobs(stack) == blobs
    assert _byo_images(docker_client) == images


@pytest.mark.attack
def test_the_attack_that_fetched_a_host_url_before_approval_is_refused_at_submit(
    c2d_stack: Installation, people: tuple[str, str, str], tmp_path: Path, docker_client: Any
) -> None:
    # Reproduced end to end before the fix: the engine fetched the URL from the data host's
    # loopback at submit, the dry run printed the secret and `c2d status` showed it to the
    # researcher, with no approval at all.
    stack = c2d_stack
    _, researcher, dataset = people
    recorder = Recorder()
    try:
        url = recorder.urls()[0]
        folder = _job_folder(
            tmp_path,
            "# foo=bar\n# escape=`\nFROM c2d/python-ml:latest\nUSER root\nRUN true # `\n"
            f"ADD {url} /opt/secret.txt\nRUN chmod 644 /opt/secret.txt\n",
            train="print(open('/opt/secret.txt').read())\n",
        )
        blobs, images = _blobs(stack), _byo_images(docker_client)
        refused = stack.c2d("submit", str(folder), "--dataset", dataset, token=researcher)
        assert refused.returncode == 4, refused.stderr  # not allowed
        assert "parser directive `foo` is not allowed" in refused.stderr
        assert recorder.seen == []
        assert stack.json("jobs", token=researcher) == []
        assert _blobs(stack) == blobs
        assert _byo_images(docker_client) == images
    finally:
        recorder.close()


def _tiny_image(docker_client: Any) -> str:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = uuid.uuid4().hex.encode()
        info = tarfile.TarInfo("etc/c2d-e2e")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    out = docker_client.api.import_image_from_data(buffer.getvalue())
    return str(json.loads(out.splitlines()[0])["status"])


def test_an_archive_of_two_images_is_refused_and_nothing_is_stored(
    c2d_stack: Installation,
    people: tuple[str, str, str],
    tmp_path: Path,
    docker_client: Any,
    made_images: set[str],
) -> None:
    stack = c2d_stack
    _, researcher, dataset = people
    first, second = _tiny_image(docker_client), _tiny_image(docker_client)
    made_images.update({first, second})
    archive = tmp_path / "two.tar"
    subprocess.run(["docker", "save", "-o", str(archive), first, second], check=True)
    folder = _job_folder(tmp_path, "")
    (folder / "Dockerfile").unlink()
    (folder / "job.yaml").write_text("name: archived\ncommand: [python3, train.py]\n")
    blobs, images = _blobs(stack), _byo_images(docker_client)

    refused = stack.c2d(
        "submit", str(folder), "--dataset", dataset, "--image-archive", str(archive),
        token=researcher,
    )  # fmt: skip
    assert refused.returncode == 2, refused.stderr
    assert "the archive holds 2 images; a job runs in one" in refused.stderr
    assert stack.json("jobs", token=researcher) == []
    assert _blobs(stack) == blobs
    assert _byo_images(docker_client) == images


def _remove_when_unused(docker_client: Any, image_id: str, timeout: float = 180.0) -> None:
    """Remove the image once no container uses it (the pre-approval dry run may, for a while)."""
    import docker.errors

    deadline = time.monotonic() + timeout
    while True:
        try:
            docker_client.images.remove(image_id, force=True)
            return
        except docker.errors.APIError as exc:
            if exc.status_code != 409 or time.monotonic() > deadline:
                raise
        time.sleep(1)


def test_a_job_whose_approved_image_is_gone_fails_without_a_container(
    c2d_stack: Installation,
    people: tuple[str, str, str],
    tmp_path: Path,
    docker_client: Any,
    made_images: set[str],
) -> None:
    stack = c2d_stack
    owner, researcher, dataset = people
    # A label of its own, so the image ID is this test's alone.
    dockerfile = f"FROM c2d/python-ml:latest\nLABEL e2e.gone={uuid.uuid4().hex}\n"
    job = stack.json(
        "submit", str(_job_folder(tmp_path, dockerfile)), "--dataset", dataset, token=researcher
    )
    made_images.add(job["image_id"])
    # The image disappears between submission and the run (the worker claims the job as soon
    # as it is approved, so it goes just before): the run must not rebuild or substitute it.
    _remove_when_unused(docker_client, job["image_id"])
    approved = stack.json("approve", job["id"], token=owner)
    assert approved["state"] == "approved"

    failed = stack.json("status", job["id"], "--wait", token=researcher, expect=1, timeout=300)
    assert failed["state"] == "failed"
    assert "no longer on this host" in failed["reason"]
    assert "resubmit" in failed["reason"]
    assert docker_client.containers.list(all=True, filters={"name": f"c2d-job-{job['id']}"}) == []


def test_an_image_archive_is_loaded_pinned_reviewed_and_run(
    c2d_stack: Installation,
    people: tuple[str, str, str],
    tmp_path: Path,
    docker_client: Any,
    made_images: set[str],
) -> None:
    stack = c2d_stack
    owner, researcher, dataset = people
    marker = uuid.uuid4().hex
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f'FROM c2d/python-ml:latest\nENV C2D_E2E_MARKER={marker}\nCMD ["python3"]\n'
    )
    image, _ = docker_client.images.build(
        path=str(context), network_mode="none", pull=False, rm=True, forcerm=True
    )  # rm: the legacy builder otherwise leaves a container per step behind
    made_images.add(image.id)
    archive = tmp_path / "image.tar"
    subprocess.run(["docker", "save", "-o", str(archive), image.id], check=True)
    folder = _job_folder(
        tmp_path,
        "",
        "import json, os\n"
        "json.dump({'marker': int(os.environ['C2D_E2E_MARKER'] == '" + marker + "')},"
        " open('/outputs/metrics.json', 'w'))\n",
    )
    (folder / "Dockerfile").unlink()
    (folder / "job.yaml").write_text("name: archived\ncommand: [python3, train.py]\n")

    job = stack.json(
        "submit", str(folder), "--dataset", dataset, "--image-archive", str(archive),
        token=researcher, timeout=600,
    )  # fmt: skip
    assert job["image_id"] == image.id

    review = stack.json("review", job["id"], token=owner)["image"]
    assert review["source"] == "archive"
    assert review["facts"]["base"] == "c2d/python-ml:latest"
    assert review["facts"]["cmd"] == ["python3"]
    assert "C2D_E2E_MARKER" in review["facts"]["env_keys"]
    assert review["archive_sha256"] == "sha256:" + hashlib.sha256(archive.read_bytes()).hexdigest()

    stack.json("approve", job["id"], token=owner)
    done = stack.json("status", job["id"], "--wait", token=researcher, timeout=300)
    assert done["state"] in {"succeeded", "released"}, (done, stack.logs())
    assert done["outcome"]["metrics"] == {"marker": 1.0}
