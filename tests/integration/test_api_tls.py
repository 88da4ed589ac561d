"""The API over HTTPS (C2D_TLS_CERT, C2D_TLS_KEY), as a data host on another machine reaches it.

A real `c2d server` with a self-signed certificate for 127.0.0.1: people and hosts who trust the
certificate (SSL_CERT_FILE) talk to it; one who does not is refused with the reason, and plain
HTTP gets no answer. A host enrolls over it with `c2d host enroll https://...`.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.kit.installation import READY_S, Installation, new_installation
from tests.kit.procs import wait_for

pytestmark = [pytest.mark.redis]


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files in ``folder``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "c2d test control plane")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "api.pem", folder / "api.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def trusting(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


@pytest.fixture(scope="module")
def tls(tmp_path_factory, redis_url) -> Iterator[tuple[Installation, str, Path]]:
    root = tmp_path_factory.mktemp("tls")
    cert, key = self_signed(root)
    made = new_installation(
        root / "control", redis_url, origin=f"c2d.test/{uuid.uuid4().hex[:8]}",
        tls_cert=cert, tls_key=key,
    )  # fmt: skip
    made.init_here()
    url = f"https://127.0.0.1:{made.env['C2D_PORT']}"
    try:
        server = made.start("server", "server")

        def healthy() -> bool:
            assert server.alive(), server.tail()
            try:
                return httpx.get(f"{url}/v1/health", verify=trusting(cert), timeout=2).is_success
            except httpx.TransportError:
                return False

        wait_for("the API to answer over HTTPS", healthy, READY_S, server.tail())
        yield made, url, cert
    finally:
        made.stop()


def test_the_api_answers_https_to_those_who_trust_its_certificate_only(tls):
    made, url, cert = tls
    me = httpx.get(
        f"{url}/v1/me",
        headers={"Authorization": f"Bearer {made.admin_token}"},
        verify=trusting(cert),
        timeout=10,
    )
    assert me.status_code == 200
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{url}/v1/health", timeout=10)  # the system's CAs only
    with pytest.raises(httpx.TransportError):
        httpx.get(url.replace("https://", "http://") + "/v1/health", timeout=10)


def test_a_host_enrolls_over_https_when_it_trusts_the_certificate(tls, tmp_path):
    made, url, cert = tls
    admin = {"Authorization": f"Bearer {made.admin_token}"}
    added = httpx.post(
        f"{url}/v1/hosts",
        json={"name": "faraway"},
        headers=admin,
        verify=trusting(cert),
        timeout=10,
    )
    assert added.status_code == 201, added.text
    enroll_token = added.json()["enroll_token"]
    untrusting = made.c2d(
        "host", "enroll", url, "--home", str(tmp_path / "untrusting"), stdin=enroll_token
    )
    assert untrusting.returncode != 0
    assert "certificate" in untrusting.stderr.lower(), untrusting.stderr

    enrolled = made.c2d(
        "host", "enroll", url, "--home", str(tmp_path / "far"), "--json",
        stdin=enroll_token, env={"SSL_CERT_FILE": str(cert)},
    )  # fmt: skip
    assert enrolled.returncode == 0, enrolled.stderr
    hosts = httpx.get(f"{url}/v1/hosts", headers=admin, verify=trusting(cert), timeout=10).json()
    assert {h["name"]: h["fingerprint"] for h in hosts}["faraway"] is not None
