"""The Docker executor for a machine that cannot mount: /outputs on a capped tmpfs volume.

The data host caps a job's ``/outputs`` with an ext4 image it loop-mounts, which needs root.
A researcher trying a job on a laptop (`c2d run --mock`, Docker Desktop or rootless Docker,
no root) gets the same sandbox with ``/outputs`` on a tmpfs the Docker engine mounts itself:
a local volume of type ``tmpfs`` whose ``size=`` is the job's output limit, owned by the
sandbox's uid. Everything else (hardening, limits, log, collector) is the Docker executor's.

A tmpfs volume is unmounted, and its files are gone, when the last container using it stops.
So a *holder* container (same image, hardened the same way, the volume read-only, sleeping)
keeps it mounted from before the job starts until cleanup; once the job exited, its outputs
are copied out of the holder (``get_archive``) into the job's folder, within the output limit,
and the collector reads them there as on the data host. A link or special file the job left
is copied as a link (never followed), so the collector refuses it as it would on the host.

The cap holds in memory, not on disk: the volume is a tmpfs of the job's output limit.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import tarfile
from pathlib import Path

import docker.errors
from docker.types import Mount

from runner.errors import SandboxError
from runner.host.sandbox import hardening, workdir
from runner.host.sandbox.docker import DockerExecutor, _engine
from runner.host.sandbox.interface import SandboxSpec

HOLDER_SUFFIX = "-outputs"
HOLD = ("python3", "-c", "import time\nwhile True: time.sleep(3600)")
COPY_SLACK = 64 * 1024  # tar headers of the copied files


def volume_name(job_id: str) -> str:
    """The tmpfs volume of ``job_id``'s /outputs."""
    return hardening.container_name(job_id) + HOLDER_SUFFIX


class TmpfsOutputsExecutor(DockerExecutor):
    """``DockerExecutor`` whose /outputs is a capped tmpfs volume (no mount privilege needed)."""

    def _prepare_outputs(self, spec: SandboxSpec, jd: workdir.JobDir) -> None:
        name = volume_name(spec.job_id)
        try:
            self.client.volumes.get(name)
        except docker.errors.NotFound:
            options = f"size={spec.limits.outputs_bytes},uid={spec.uid},gid={spec.gid},mode=0700"
            self.client.volumes.create(
                name=name,
                driver="local",
                driver_opts={"type": "tmpfs", "device": "tmpfs", "o": options},
                labels={hardening.LABEL_JOB: spec.job_id},
            )

    def _ready_outputs(self, spec: SandboxSpec, jd: workdir.JobDir) -> None:
        """Start the holder that keeps the volume mounted until cleanup."""
        name = volume_name(spec.job_id)
        try:
            holder = self.client.containers.get(name)
        except docker.errors.NotFound:
            kwargs = hardening.create_kwargs(spec, jd, deadline=0.0, timeout_s=0)
            kwargs.update(
                name=name,
                command=list(HOLD),
                mounts=[Mount(target="/outputs", source=name, type="volume", read_only=True)],
                labels={hardening.LABEL_JOB: spec.job_id},
                mem_limit=64 * 1024 * 1024,
                memswap_limit=64 * 1024 * 1024,
                pids_limit=16,
                nano_cpus=int(0.1 * 1e9),
            )
            holder = self.client.containers.create(**kwargs)
        if holder.status != "running":
            holder.start()

    def _outputs_mount(self, spec: SandboxSpec, jd: workdir.JobDir) -> Mount:
        return Mount(target="/outputs", source=volume_name(spec.job_id), type="volume")

    def _exited_outputs(self, spec: SandboxSpec, jd: workdir.JobDir) -> tuple[Path, bool]:
        try:
            holder = self.client.containers.get(volume_name(spec.job_id))
        except docker.errors.NotFound as exc:
            raise SandboxError(
                f"job {spec.job_id}'s /outputs is gone: its holder container was removed"
            ) from exc
        limit = spec.limits.outputs_bytes
        if jd.outputs.exists():  # collected before: the copy is already there
            return jd.outputs, _used(jd.outputs) >= limit - COPY_SLACK
        stream, _ = holder.get_archive("/outputs/.")
        data = io.BytesIO()
        for chunk in stream:
            data.write(chunk)
            if data.tell() > limit + COPY_SLACK + 1024 * 1024:
                raise SandboxError(f"job {spec.job_id}'s /outputs holds more than its limit")
        data.seek(0)
        temp = jd.root / "outputs.copying"
        temp.mkdir(mode=0o700, exist_ok=True)
        with tarfile.open(fileobj=data) as tar:
            _copy_out(tar, temp)
        os.replace(temp, jd.outputs)
        return jd.outputs, _used(jd.outputs) >= limit - COPY_SLACK

    @_engine
    def _remove_outputs(self, job_id: str) -> None:
        name = volume_name(job_id)
        with contextlib.suppress(docker.errors.NotFound):
            self.client.containers.get(name).remove(force=True)
        with contextlib.suppress(docker.errors.NotFound):
            self.client.volumes.get(name).remove(force=True)


def _copy_out(tar: tarfile.TarFile, folder: Path) -> None:
    """Write the archive's regular files and folders under ``folder``; every other member
    (a link, a device, a fifo) becomes a dangling link at its name, which the collector
    refuses without following. Names that would leave ``folder`` are refused outright."""
    root = folder.resolve()
    for member in tar.getmembers():
        parts = Path(member.name).parts
        if parts and parts[0] == "outputs":  # get_archive("/outputs/.") may name the top
            parts = parts[1:]
        if not parts or parts in ((".",),):
            continue
        target = (folder / Path(*parts)).resolve()
        if target != root and root not in target.parents:
            raise SandboxError(f"an output's name leaves /outputs: {member.name!r}")
        target.parent.mkdir(parents=True, exist_ok=True)
        if member.isdir():
            target.mkdir(exist_ok=True)
        elif member.isreg():
            source = tar.extractfile(member)
            assert source is not None
            with source, open(target, "wb") as sink:
                while block := source.read(1 << 20):
                    sink.write(block)
            os.chmod(target, stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IROTH)
        else:
            os.symlink("c2d-refused-not-a-regular-file", target)


def _used(folder: Path) -> int:
    return sum(p.lstat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
