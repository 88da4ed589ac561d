"""What sandboxing a researcher's build costs: c2d's builder against the engine's own.

Run: .venv/bin/python -m bench.build_bench [--runs N] [--quick]

c2d reads the Dockerfile with Docker's parser and runs every step itself, each ``RUN`` in a
container with the job sandbox's defaults (no network, no capabilities, limits, the host's
runtime), each ``COPY`` as a tar it writes. The baseline is the engine's classic builder
(``docker build`` with no network and no cache: what c2d used before, which ran steps as root
with default capabilities) on the same Dockerfile and context, in the same run, interleaved.
Both build without cache (a researcher's first submission). The Dockerfile installs a vendored
wheel, as the README's example does. Goal: c2d within 1.5x of the classic builder.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import io
import shutil
import time
import zipfile
from pathlib import Path

import docker
import docker.errors

from bench import common, figures
from bench.figures import Row, median, secs
from jobs.bundle import pack
from runner.host.images import build_from_dockerfile

GOAL = 1.5
DOCKERFILE = (
    "FROM c2d/python-ml:latest\n"
    "USER root\n"
    "WORKDIR /opt/job\n"
    "COPY wheels /tmp/wheels\n"
    "RUN pip install --no-index --find-links /tmp/wheels --break-system-packages c2dbench \\\n"
    "    && rm -rf /tmp/wheels\n"
    "COPY train.py /opt/job/train.py\n"
    'RUN python3 -c "import c2dbench; print(c2dbench.VALUE)"\n'
    "ENV OMP_NUM_THREADS=1\n"
    "USER 65534:65534\n"
)


def job_folder(root: Path) -> Path:
    """The job folder: the Dockerfile, a hand-written pure-Python wheel and a script."""
    folder = root / "job"
    (folder / "wheels").mkdir(parents=True)
    (folder / "Dockerfile").write_text(DOCKERFILE)
    (folder / "train.py").write_text("print('train')\n")
    dist = "c2dbench-1.0.dist-info"
    files = {
        "c2dbench/__init__.py": b"VALUE = 42\n",
        f"{dist}/METADATA": b"Metadata-Version: 2.1\nName: c2dbench\nVersion: 1.0\n",
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    files[f"{dist}/RECORD"] = ("\n".join([*record, f"{dist}/RECORD,,"]) + "\n").encode()
    with zipfile.ZipFile(folder / "wheels" / "c2dbench-1.0-py3-none-any.whl", "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return folder


def classic(client: docker.DockerClient, context: bytes) -> tuple[float, str]:
    """One build by the engine's classic builder: no network, no cache; (seconds, image)."""
    t0 = time.perf_counter()
    image = ""
    for chunk in client.api.build(
        fileobj=io.BytesIO(context),
        custom_context=True,
        nocache=True,
        network_mode="none",
        rm=True,
        forcerm=True,
        pull=False,
        decode=True,
    ):
        if "error" in chunk:
            raise RuntimeError(chunk["error"])
        image = (chunk.get("aux") or {}).get("ID", image)
    return time.perf_counter() - t0, image


def ours(client: docker.DockerClient, folder: Path) -> tuple[float, str]:
    """One build by c2d's sandboxed builder, without cache; (seconds, image)."""
    t0 = time.perf_counter()
    built = build_from_dockerfile(client, folder)
    return time.perf_counter() - t0, built.image_id


def remove(client: docker.DockerClient, image: str) -> None:
    with contextlib.suppress(docker.errors.APIError):
        client.api.remove_image(image, force=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=None, help="builds of each (default 5)")
    parser.add_argument("--quick", action="store_true", help="2 builds of each")
    args = parser.parse_args()
    runs = args.runs or (2 if args.quick else 5)
    client = docker.from_env(timeout=600)
    root = common.scratch("build")
    times: dict[str, list[float]] = {"c2d": [], "classic": []}
    try:
        folder = job_folder(root)
        context = pack(folder).data
        for _ in range(runs + 1):  # the first round warms the engine's page cache, untimed
            for name in ("classic", "c2d"):
                took, image = (
                    classic(client, context) if name == "classic" else ours(client, folder)
                )
                times[name].append(took)
                remove(client, image)
        for series in times.values():
            del series[0]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    ratio = median(times["c2d"]) / median(times["classic"])
    rows = [
        Row(
            measure=f"build, COPY wheel + pip install + 8 more steps, no cache (n={runs})",
            value=secs(median(times["c2d"])),
            baseline=secs(median(times["classic"])) + " docker build (classic)",
            ratio=f"{ratio:.2f}x",
            goal=f"<= {GOAL:.1f}x",
            met=ratio <= GOAL,
            note=f"c2d {[round(t, 2) for t in times['c2d']]} s, classic "
            f"{[round(t, 2) for t in times['classic']]} s",
        )
    ]
    figures.finish("build", rows)


if __name__ == "__main__":
    main()
