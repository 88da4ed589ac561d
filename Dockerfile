# c2d's app image: the API, the data hosts and Redis of docker-compose.yml, from one recipe.
#
# Build it with `make compose-image` (runner/scripts/compose_image.sh): that script fills the
# build context (build/compose/context) with wheels of c2d and of every dependency at the
# versions installed in .venv, made on the host, so this build needs no network at all.
#
# BASE is a build argument:
# - default c2d/app-base:bookworm, bootstrapped from Debian packages with mmdebstrap by the
#   script (python3, python3-venv, redis-server, e2fsprogs, mount, tzdata): no registry needed;
# - where a registry answers, a Debian bookworm Python image, e.g.
#   `make compose-image BASE=python:3.11-slim-bookworm`; the first stage then installs the
#   Debian packages the services need with apt (a host that reaches a registry reaches Debian).
#   Keep Python 3.11: the wheels in the context are built for the host's cp311.
ARG BASE=c2d/app-base:bookworm

FROM ${BASE} AS system
RUN set -eu; need=""; \
    command -v redis-server >/dev/null || need="$need redis-server"; \
    command -v mkfs.ext4 >/dev/null || need="$need e2fsprogs"; \
    command -v mount >/dev/null || need="$need mount"; \
    [ -e /usr/share/zoneinfo/UTC ] || need="$need tzdata"; \
    python3 -c "import ensurepip, venv" 2>/dev/null || need="$need python3-venv"; \
    if [ -n "$need" ]; then \
        echo "installing from Debian:$need"; \
        apt-get update; \
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $need; \
        rm -rf /var/lib/apt/lists/*; \
    fi
ENV PATH=/opt/c2d/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LANG=C.UTF-8

# The dependencies change rarely: their own stage, so a change to c2d rebuilds only the last
# layer, and the wheel files never reach the final image.
FROM system AS deps
COPY wheels/deps/ /tmp/wheels/
RUN python3 -m venv /opt/c2d \
    && /opt/c2d/bin/pip install --no-index --no-cache-dir --disable-pip-version-check \
        --find-links /tmp/wheels /tmp/wheels/*.whl

FROM system
COPY --from=deps /opt/c2d /opt/c2d
COPY wheels/app/ /tmp/wheels/
COPY dockerfiles/ /tmp/dockerfiles/
# The environment recipes (runner/host/images/dockerfiles) are not in c2d's wheel: pyproject.toml's
# package-data lacks "dockerfiles/*.Dockerfile". Without them a data host knows no environment,
# so they are put where the package looks for them unless the wheel brought them.
RUN /opt/c2d/bin/pip install --no-index --no-cache-dir --disable-pip-version-check --no-deps \
        /tmp/wheels/*.whl \
    && dest="$(python3 -c 'import os, runner; print(os.path.dirname(runner.__file__))')" \
    && if [ ! -d "$dest/dockerfiles" ]; then cp -r /tmp/dockerfiles "$dest/dockerfiles"; fi \
    && rm -rf /tmp/wheels /tmp/dockerfiles \
    && python3 -c "from runner.host.images.environments import known_environments as k; assert k(), k()"
COPY compose_entrypoint.sh /usr/local/bin/c2d-compose
RUN chmod 0755 /usr/local/bin/c2d-compose
ENTRYPOINT ["/usr/local/bin/c2d-compose"]
