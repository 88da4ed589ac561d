"""A job's folder on the host, and its size-capped ``/outputs`` filesystem.

Layout under the executor's work root (which it owns alone)::

    <work_root>/<job_id>/job/params.json   mounted read-only at /job
    <work_root>/<job_id>/outputs.img       sparse ext4 image, max(outputs limit, 256 KiB) long
    <work_root>/<job_id>/outputs/          the image, loop-mounted nosuid,nodev,noexec;
                                           bind-mounted read-write at /outputs
    <work_root>/<job_id>/prepared          written last by prepare: the folder is complete
    <work_root>/<job_id>/timed-out         written before the executor kills at the deadline

Why a loop-mounted image: the job's writes land in a filesystem whose size is fixed when it is
made, so no write, however it is done (many files, sparse files, hard links, directories,
extended attributes), can put more on the host disk than the image file's length. The image is
sparse: it takes only the blocks the job wrote.

Bound, stated and tested: the host disk holds at most ``max(outputs_bytes, 256 KiB)`` bytes of
image for a job, whatever it writes: the image file is sparse and never longer than that. (The
host filesystem's own extent blocks for that one file come on top; the test allows 64 KiB for
them, and in practice the blocks allocated stayed below the limit itself: 864 KiB for a 1 MiB
limit written 10 times over, 96.4 MiB for 100 MiB.) The collector copies at most
``outputs_bytes`` into the artifact store, so while a job is collected the two together hold at
most twice the limit, and after cleanup only what was accepted stays. The filesystem's metadata
and ext4's allocation reserve come out of the image, so a job can use a little less than its
limit: about 97 % of it (94 % at 1 MiB). The inode count scales with the size (one per 32 KiB,
64 to 65,536), which also bounds how many files a job can make there.

Making the filesystem needs root (mount) and ``mkfs.ext4``; the worker runs as root on the data
host, in the same mount namespace as the Docker engine.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from runner.errors import SandboxError

MIN_IMAGE_BYTES = 256 * 1024
_SMALL_FS = 64 * 1024 * 1024
_MOUNT_OPTIONS = "loop,nosuid,nodev,noexec,noatime"


@dataclass(frozen=True)
class JobDir:
    """The host folder of one job (see the module docstring for its layout)."""

    root: Path

    @property
    def job(self) -> Path:
        return self.root / "job"

    @property
    def image(self) -> Path:
        return self.root / "outputs.img"

    @property
    def outputs(self) -> Path:
        return self.root / "outputs"

    @property
    def prepared(self) -> Path:
        return self.root / "prepared"

    @property
    def timed_out(self) -> Path:
        return self.root / "timed-out"

    def is_prepared(self) -> bool:
        return self.prepared.exists()


def job_dir(work_root: Path, job_id: str) -> JobDir:
    """The folder of ``job_id`` under ``work_root`` (the id is validated by SandboxSpec)."""
    if "/" in job_id or job_id in ("", ".", ".."):
        raise SandboxError(f"job id {job_id!r} cannot name a folder")
    return JobDir(Path(work_root) / job_id)


def image_bytes(outputs_bytes: int) -> int:
    """Length of the outputs image for a job whose output limit is ``outputs_bytes``."""
    return max(outputs_bytes, MIN_IMAGE_BYTES)


def _run(cmd: list[str], what: str) -> None:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    except FileNotFoundError as exc:
        raise SandboxError(
            f"{cmd[0]} is not installed; the sandbox needs it to {what} (apt-get install "
            "e2fsprogs mount)"
        ) from exc
    if done.returncode != 0:
        raise SandboxError(
            f"could not {what}: {' '.join(cmd)} failed: {done.stderr.strip() or done.returncode}"
            "; the worker must run as root on the data host"
        )


def _mkfs(image: Path, size: int, uid: int, gid: int) -> None:
    """Make the image atomically: a half-made one never carries the final name."""
    temp = image.with_name(f"{image.name}.tmp-{os.getpid()}")
    try:
        with temp.open("wb") as f:
            f.truncate(size)
        block = "1024" if size <= _SMALL_FS else "4096"
        inodes = str(min(max(size // 32768, 64), 65536))
        _run(
            [
                "mkfs.ext4", "-q", "-F", "-b", block, "-m", "0", "-N", inodes,
                "-O", "^has_journal,^resize_inode",
                "-E", f"nodiscard,root_owner={uid}:{gid}",
                str(temp),
            ],
            "make the /outputs filesystem",
        )  # fmt: skip
        os.replace(temp, image)
    finally:
        temp.unlink(missing_ok=True)


def ensure_outputs(jd: JobDir, size: int, uid: int, gid: int) -> None:
    """Make (if missing) and mount (if not mounted) the job's outputs filesystem. Idempotent."""
    if not jd.image.exists():
        _mkfs(jd.image, size, uid, gid)
    mount_outputs(jd)


def mount_outputs(jd: JobDir) -> None:
    """Mount an existing outputs image at ``jd.outputs`` unless it is mounted already."""
    jd.outputs.mkdir(exist_ok=True)
    if os.path.ismount(jd.outputs):
        return
    _run(
        ["mount", "-t", "ext4", "-o", _MOUNT_OPTIONS, str(jd.image), str(jd.outputs)],
        "mount the /outputs filesystem",
    )
    # An empty /outputs is what the job expects; e2fsck would recreate lost+found if needed.
    with contextlib.suppress(OSError):
        (jd.outputs / "lost+found").rmdir()


def outputs_full(jd: JobDir, slack: int = 64 * 1024) -> bool:
    """Whether the job filled its outputs filesystem (fewer than ``slack`` bytes left)."""
    if not os.path.ismount(jd.outputs):
        return False
    st = os.statvfs(jd.outputs)
    return st.f_bavail * st.f_frsize < slack


def unmount_outputs(jd: JobDir) -> None:
    """Unmount the outputs filesystem if mounted; a busy mount is retried, then detached lazily."""
    for attempt in range(5):
        if not os.path.ismount(jd.outputs):
            return
        lazy = ["-l"] if attempt == 4 else []
        with contextlib.suppress(SandboxError):
            _run(["umount", *lazy, str(jd.outputs)], "unmount the /outputs filesystem")
        time.sleep(0.1 * attempt)
    if os.path.ismount(jd.outputs):
        raise SandboxError(f"{jd.outputs} stays mounted; unmount it by hand (umount -l)")


def remove_job_dir(jd: JobDir) -> None:
    """Unmount and delete everything of the job on the host. Idempotent."""
    if not jd.root.exists():
        return
    unmount_outputs(jd)
    # rmtree would descend into a mount; unmount_outputs raised unless none is left.
    shutil.rmtree(jd.root, ignore_errors=False)


def job_dirs(work_root: Path) -> list[JobDir]:
    """Every job folder under ``work_root`` (for the reaper)."""
    if not Path(work_root).is_dir():
        return []
    return [JobDir(p) for p in sorted(Path(work_root).iterdir()) if p.is_dir()]
