"""From inside a job, nothing on any network answers and no name resolves.

The probe connects to a listener the test itself opens on every host address (so a failure
cannot be "nothing was listening"), to the host's Redis, to Docker's bridge gateway and to public
addresses. A control run of the same probe from an ordinary bridge container reaches the
listener, which shows the probe would notice a reachable address.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import docker
import pytest

from tests.kit.sandbox import PROBE_HELPERS, Sandbox, host_addresses

pytestmark = [pytest.mark.docker, pytest.mark.redis]

BRIDGE_GATEWAY = "172.17.0.1"
PUBLIC = [("1.1.1.1", 443), ("8.8.8.8", 53), ("151.101.0.223", 443)]  # the last is pypi.org's

PROBE = """
targets = json.load(open("/job/params.json"))["targets"]
report(
    connects={f"{h}:{p}": tcp(h, p) for h, p in targets},
    dns={name: attempt(lambda n=name: socket.getaddrinfo(n, 443)) for name in
         ["pypi.org", "deb.debian.org", "host.docker.internal", "gateway.docker.internal"]},
    udp=attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(
        b"x", ("8.8.8.8", 53))),
)
"""


@pytest.fixture
def listener() -> Iterator[int]:
    """A TCP server on every host address that accepts (and drops) connections."""
    server = socket.create_server(("0.0.0.0", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                conn.close()
            except TimeoutError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    server.close()


def targets(port: int) -> list[tuple[str, int]]:
    found = [
        ("127.0.0.1", 6379),
        ("127.0.0.1", port),
        (BRIDGE_GATEWAY, 6379),
        (BRIDGE_GATEWAY, port),
    ]
    for address in host_addresses():
        found += [(address, 6379), (address, port)]
    return found + PUBLIC


def test_no_connection_leaves_the_job(sandbox: Sandbox, listener: int, redis_url: str) -> None:
    seen = sandbox.probe(PROBE, params={"targets": targets(listener)})
    connected = {target: how for target, how in seen["connects"].items() if how == "ok"}
    assert connected == {}, seen
    assert len(seen["connects"]) >= len(PUBLIC) + 4
    resolved = {name: how for name, how in seen["dns"].items() if how == "ok"}
    assert resolved == {}, seen
    assert seen["udp"] != "ok"


@pytest.mark.parametrize("runtime", ["runc"])
def test_control_the_probe_does_see_a_reachable_host(
    docker_client: docker.DockerClient,
    job_image: str,
    test_labels: dict[str, str],
    listener: int,
    runtime: str,
) -> None:
    """Without the sandbox (a plain bridge container) the same probe reaches the listener."""
    script = PROBE_HELPERS + (f"report(gateway=tcp({BRIDGE_GATEWAY!r}, {listener}))\n")
    out = docker_client.containers.run(
        job_image,
        ["python3", "-c", script],
        network_mode="bridge",
        runtime=runtime,
        labels=test_labels,
        remove=True,
    ).decode()
    line = next(x for x in out.splitlines() if x.startswith("C2D-PROBE "))
    assert json.loads(line.removeprefix("C2D-PROBE ")) == {"gateway": "ok"}
