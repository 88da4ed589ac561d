# The default job environment: Debian's python3 plus the ML stack at the client's versions.
# BASE is a build argument: a locally bootstrapped Debian image where no registry answers, or a
# registry image such as python:3.11-slim where one does.
ARG BASE=c2d/debian-python:bookworm
FROM ${BASE}
# site/ is filled by `c2d image build` with the exact wheels the client has installed, already
# byte-compiled (the root filesystem is read-only at run time, so no .pyc could be written then).
COPY site/ /opt/c2d/site/
ENV PYTHONPATH=/opt/c2d/site \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    MPLCONFIGDIR=/tmp \
    OMP_NUM_THREADS=1
USER 65534:65534
WORKDIR /code
