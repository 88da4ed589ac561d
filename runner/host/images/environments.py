"""Job environment images: what names a job may ask for, and how their images are built.

An environment is a named image on the data host (`python-ml` -> `c2d/python-ml:latest`). The
default one carries numpy, scipy, pandas, scikit-learn and skops at exactly the versions installed
beside this client, so a model trained inside loads outside. No registry is needed: the base is
bootstrapped from Debian packages with mmdebstrap, or taken from a registry image given as `base`.

Every image is labelled with the digest of its recipe (Dockerfile, base, pinned versions) and
tagged with it (`c2d/python-ml:recipe-<digest>`); a build whose recipe tag exists is skipped.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

from runner.errors import ImageError, UnknownEnvironment

Progress = Callable[[str], None]

LABEL_ENV = "org.c2d.environment"
LABEL_RECIPE = "org.c2d.recipe"
LABEL_PINS = "org.c2d.pins"

DOCKERFILES = Path(__file__).parent / "dockerfiles"
LOCAL_BASE = "c2d/debian-python:bookworm"
# Debian packages of the bootstrapped base: the full stdlib and pip (for researchers' own images).
BASE_PACKAGES = ("python3", "python3-pip")
# Packages whose versions must match the client's, or a pickled-and-skopsed model will not load.
# pyarrow: a job reads Parquet (real or mock) with the same reader the host profiled it with.
PINNED = (
    "numpy", "scipy", "pandas", "pyarrow", "scikit-learn", "skops", "joblib", "threadpoolctl",
)  # fmt: skip


@dataclass(frozen=True)
class BuildResult:
    """What `build_environment` did: the image it left tagged, and whether it had to build."""

    name: str
    tag: str
    image_id: str
    recipe: str
    built: bool
    seconds: float


def image_tag(name: str) -> str:
    """The local tag of environment `name`."""
    return f"c2d/{name}:latest"


def known_environments() -> list[str]:
    """Names of the environments this c2d can build (one Dockerfile each)."""
    return sorted(p.name.removesuffix(".Dockerfile") for p in DOCKERFILES.glob("*.Dockerfile"))


def client_pins() -> dict[str, str]:
    """Versions of the pinned packages installed beside this client."""
    pins = {}
    for dist in PINNED:
        try:
            pins[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError as exc:
            raise ImageError(
                f"{dist} is not installed beside c2d; install c2d with its dependencies "
                "(make dev) before building images"
            ) from exc
    return pins


def recipe_digest(dockerfile: str, base: str, pins: dict[str, str]) -> str:
    """The content digest of an image recipe: equal digests build equal images."""
    doc = json.dumps(
        {"dockerfile": dockerfile, "base": base, "pins": pins, "python": sys.version_info[:2]},
        sort_keys=True,
    )
    return "sha256:" + hashlib.sha256(doc.encode()).hexdigest()


def resolve(client: docker.DockerClient, name: str) -> str:
    """Return the local image ID of environment `name`, never pulling.

    Raises UnknownEnvironment for a name this host does not provide, ImageError when its image
    has not been built here yet.
    """
    if name not in known_environments():
        raise UnknownEnvironment(
            f"environment '{name}' is not provided here; choose one of: "
            + ", ".join(known_environments())
        )
    try:
        return str(client.images.get(image_tag(name)).id)
    except docker.errors.ImageNotFound as exc:
        raise ImageError(
            f"the image of environment '{name}' is not built on this host; run `make image` "
            "(or `c2d image build`)"
        ) from exc


def recipe_tag(name: str, recipe: str) -> str:
    """A tag naming one recipe of environment `name`.

    Lookups go by this tag, not by label: an image built FROM ours inherits every label,
    so a label search could mistake a researcher's derived image for the environment itself.
    """
    return f"c2d/{name}:recipe-{recipe.removeprefix('sha256:')[:16]}"


def _find_tagged(client: docker.DockerClient, tag: str, recipe: str) -> str | None:
    try:
        image = client.images.get(tag)
    except docker.errors.ImageNotFound:
        return None
    return str(image.id) if image.labels.get(LABEL_RECIPE) == recipe else None


def _run_streaming(cmd: list[str], progress: Progress, what: str) -> None:
    """Run `cmd`, passing its output lines to `progress`; raise ImageError on failure."""
    tail: list[str] = []
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            if line:
                tail = [*tail[-19:], line]
                progress(f"  {line}")
    if proc.returncode != 0:
        raise ImageError(f"{what} failed (exit {proc.returncode}):\n" + "\n".join(tail))


def bootstrap_base(client: docker.DockerClient, progress: Progress) -> str:
    """Build the Debian base image with mmdebstrap unless one of the same recipe exists."""
    recipe = recipe_digest(" ".join(BASE_PACKAGES), "mmdebstrap:bookworm", {})
    found = _find_tagged(client, LOCAL_BASE, recipe)
    if found:
        progress(f"base image {LOCAL_BASE} is present")
        return found
    if shutil.which("mmdebstrap") is None:
        raise ImageError(
            "no base image and no mmdebstrap to make one: install mmdebstrap "
            "(apt-get install mmdebstrap), or pass a registry base such as python:3.11-slim"
        )
    progress("bootstrapping a Debian base with mmdebstrap (about a minute)")
    with tempfile.TemporaryDirectory(prefix="c2d-base-") as tmp:
        tar = Path(tmp) / "base.tar"
        _run_streaming(
            [
                "mmdebstrap",
                "--variant=apt",
                "--include=" + ",".join(BASE_PACKAGES),
                '--aptopt=APT::Install-Recommends "false"',
                "--dpkgopt=path-exclude=/usr/share/doc/*",
                "--dpkgopt=path-exclude=/usr/share/man/*",
                "--dpkgopt=path-exclude=/usr/share/locale/*",
                "--customize-hook=rm -rf $1/var/lib/apt/lists/* $1/var/cache/apt/*",
                "bookworm",
                str(tar),
            ],
            progress,
            "mmdebstrap",
        )
        progress(f"importing the base as {LOCAL_BASE}")
        repo, tag = LOCAL_BASE.split(":")
        client.api.import_image_from_file(
            str(tar), repository=repo, tag=tag, changes=[f"LABEL {LABEL_RECIPE}={recipe}"]
        )
    return str(client.images.get(LOCAL_BASE).id)


def _fill_site(site: Path, pins: dict[str, str], progress: Progress) -> None:
    """Install the pinned wheels (and what they need) into `site`, byte-compiled."""
    progress("fetching wheels: " + ", ".join(f"{k}=={v}" for k, v in pins.items()))
    _run_streaming(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--only-binary=:all:", "--target", str(site),
            *(f"{k}=={v}" for k, v in pins.items()),
        ],
        progress,
        "pip install of the environment's packages",
    )  # fmt: skip
    for junk in site.glob("bin"):
        shutil.rmtree(junk)
    progress("byte-compiling (the job's root filesystem is read-only)")
    _run_streaming(
        [sys.executable, "-m", "compileall", "-q", "-j", "0",
         "--invalidation-mode", "unchecked-hash", str(site)],
        progress,
        "compileall",
    )  # fmt: skip


def build_environment(
    client: docker.DockerClient,
    name: str = "python-ml",
    *,
    base: str | None = None,
    force: bool = False,
    progress: Progress = lambda _msg: None,
) -> BuildResult:
    """Make sure environment `name` is built and tagged; build only what is missing.

    `base` is a registry image to start from (for example python:3.11-slim); without it the base
    is bootstrapped from Debian packages. The build never pulls when `base` is local.
    """
    started = time.monotonic()
    path = DOCKERFILES / f"{name}.Dockerfile"
    if not path.exists():
        raise UnknownEnvironment(
            f"no recipe for environment '{name}'; known: {', '.join(known_environments())}"
        )
    dockerfile = path.read_text()
    pins = client_pins()
    recipe = recipe_digest(dockerfile, base or LOCAL_BASE, pins)
    tag = image_tag(name)
    pinned = recipe_tag(name, recipe)
    found = None if force else _find_tagged(client, pinned, recipe)
    if found:
        client.images.get(found).tag(tag)
        progress(f"{tag} is up to date ({recipe[:19]})")
        return BuildResult(name, tag, found, recipe, False, time.monotonic() - started)

    base_ref = base or LOCAL_BASE
    if base is None:
        bootstrap_base(client, progress)
    with tempfile.TemporaryDirectory(prefix="c2d-image-") as tmp:
        ctx = Path(tmp)
        (ctx / "Dockerfile").write_text(dockerfile)
        _fill_site(ctx / "site", pins, progress)
        progress(f"building {tag} from {base_ref}")
        try:
            for chunk in client.api.build(
                path=str(ctx),
                tag=tag,
                buildargs={"BASE": base_ref},
                labels={LABEL_ENV: name, LABEL_RECIPE: recipe, LABEL_PINS: json.dumps(pins)},
                rm=True,
                forcerm=True,
                pull=False,
                decode=True,
            ):
                if "error" in chunk:
                    raise ImageError(f"building {tag} failed: {chunk['error'].strip()}")
                line = str(chunk.get("stream", "")).strip()
                if line:
                    progress(f"  {line}")
        except docker.errors.APIError as exc:
            raise ImageError(f"building {tag} failed: {exc.explanation or exc}") from exc
    image = client.images.get(tag)
    image.tag(pinned)
    image_id = str(image.id)
    progress(f"built {tag} {image_id[:19]} in {time.monotonic() - started:.0f} s")
    return BuildResult(name, tag, image_id, recipe, True, time.monotonic() - started)
