"""Bring your own container: a researcher's image, built or loaded on the data host under policy.

A job may run in an image of its own instead of a named environment, made one of two ways:

- ``build_from_dockerfile``: the job folder's Dockerfile, read by the engine's own parser and
  built by c2d step by step, every ``RUN`` in a container with no network and the job sandbox's
  defaults (no capabilities, no-new-privileges, the host's runtime, process, memory, CPU and
  file-size limits), never pulling, only ``FROM`` a base the host allows (by default the default
  environment, ``c2d/python-ml:latest``), within build-time, size and layer caps; no ``ADD``.
  Python packages travel in the job's ``wheels/`` folder::

      FROM c2d/python-ml:latest
      USER root
      COPY wheels /tmp/wheels
      RUN pip install --no-index --find-links /tmp/wheels --break-system-packages mypkg \\
          && rm -rf /tmp/wheels

  (``--break-system-packages`` because Debian's Python refuses system-wide pip installs.)
- ``load_archive``: a ``docker save`` archive of exactly one image whose layers start with an
  allowed base's. The engine loads a tar c2d rebuilds from the archive's checked config and
  layers, with a manifest c2d writes and no tags, and a load that moved a tag all the same is
  undone and refused: an archive can never move a tag that exists here.

Either way the image passes one gate (``check_image``), is tagged ``c2d/byo:<hex of its ID>``
and is described by ``ImageFacts`` for review. Whatever its ``USER`` or ``ENTRYPOINT`` say, the
sandbox runs it with its own defaults (runner's uid, no network, read-only root, no capabilities,
no-new-privileges, limits), and it never runs the image's ``ENTRYPOINT``: only job.yaml's
reviewed command runs. Review still shows the ENTRYPOINT, as what the image would have done.

**Pinning by ID, not by recipe.** A build is reproducible only from its cache
(``BuildCache``): the same Dockerfile and context rebuild to the same image ID while the cached
steps exist, but a rebuild without them gets a new ID (every step's config records its creation
time). So the image is built (or loaded) **once, at submission**, and its ID is what the approval
binds; the run uses exactly that ID and never rebuilds. If the image is gone at run time
(``ImageGone``), the job fails and is resubmitted; it is never rebuilt behind the approval's back.
"""

from runner.host.images.archive import receive_archive
from runner.host.images.build import BuildCache, build_from_dockerfile
from runner.host.images.cleanup import remove_unused_images
from runner.host.images.facts import BuiltImage, ImageFacts, describe_image
from runner.host.images.load import load_archive
from runner.host.images.policy import BYO_REPOSITORY, DEFAULT_BASE, LABEL_BYO, ByoPolicy

__all__ = [
    "BYO_REPOSITORY",
    "DEFAULT_BASE",
    "LABEL_BYO",
    "BuildCache",
    "BuiltImage",
    "ByoPolicy",
    "ImageFacts",
    "build_from_dockerfile",
    "describe_image",
    "load_archive",
    "receive_archive",
    "remove_unused_images",
]
