"""Data hosts: added by an admin, enrolled once with their own key, then scoped to their jobs."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from jobs.errors import Conflict, InvalidRequest, NotAllowed, NotFound, Unauthenticated
from ledger.keys import raw_public_key
from ledger.statements import fingerprint, sign_statement
from tests.kit.worlds import build_world


def public(key: Ed25519PrivateKey) -> str:
    return base64.b64encode(raw_public_key(key)).decode()


def test_an_admin_adds_a_host_that_enrolls_once_with_its_key(tmp_path):
    w = build_world(tmp_path)
    host, token = w.service.add_host(w.ada, "h1")
    assert token.startswith("c2de_")
    assert host.public_key is None
    key = Ed25519PrivateKey.generate()
    enrolled, credential = w.service.enroll_host(token, public(key))
    assert credential.startswith("c2dh_")
    assert enrolled.fingerprint == fingerprint(raw_public_key(key))
    assert w.service.authenticate_host(credential).name == "h1"
    with pytest.raises(Unauthenticated):  # the enrollment token is spent
        w.service.enroll_host(token, public(Ed25519PrivateKey.generate()))
    entries = [e for e in w.ledger.entries() if e.subject == "host:h1"]
    assert [e.type for e in entries] == ["host.added", "host.enrolled"]
    assert entries[1].body["public_key"] == public(key)
    assert entries[1].actor == "host:h1"


def test_only_admins_add_hosts_and_names_are_unique(tmp_path):
    w = build_world(tmp_path)
    with pytest.raises(NotAllowed):
        w.service.add_host(w.olga, "h1")
    w.service.add_host(w.ada, "h1")
    with pytest.raises(Conflict):
        w.service.add_host(w.ada, "h1")
    with pytest.raises(NotFound):
        w.service.add_host(w.ada, "nope", renew=True)


def test_renewal_revokes_the_old_key_and_credential(tmp_path):
    w = build_world(tmp_path)
    _, token = w.service.add_host(w.ada, "h1")
    _, old = w.service.enroll_host(token, public(Ed25519PrivateKey.generate()))
    _, again = w.service.add_host(w.ada, "h1", renew=True)
    with pytest.raises(Unauthenticated):
        w.service.authenticate_host(old)
    _, new = w.service.enroll_host(again, public(Ed25519PrivateKey.generate()))
    assert w.service.authenticate_host(new).name == "h1"


def test_people_and_hosts_do_not_share_credentials(tmp_path):
    w = build_world(tmp_path)
    with pytest.raises(Unauthenticated):
        w.service.authenticate_host(w.tokens["olga"])
    _, token = w.service.add_host(w.ada, "h1")
    _, credential = w.service.enroll_host(token, public(Ed25519PrivateKey.generate()))
    with pytest.raises(Unauthenticated):
        w.service.authenticate(credential)


def test_a_key_must_be_32_bytes(tmp_path):
    w = build_world(tmp_path)
    _, token = w.service.add_host(w.ada, "h1")
    with pytest.raises(InvalidRequest):
        w.service.enroll_host(token, base64.b64encode(b"short").decode())


def test_a_host_sees_only_its_own_jobs_and_signatures_are_checked(tmp_path):
    w = build_world(tmp_path)  # the dataset iris runs on data host "default"
    job = w.submit()
    key = w.host.identity.key
    mine = w.service.get_host("default")
    assert w.service.host_job(mine, job.id).id == job.id
    _, other_token = w.service.add_host(w.ada, "elsewhere")
    other, _ = w.service.enroll_host(other_token, public(Ed25519PrivateKey.generate()))
    with pytest.raises(NotFound):
        w.service.host_job(other, job.id)
    statement = {"type": "c2d.test/1", "job": job.id}
    w.service.check_host_signature(mine, statement, sign_statement(key, statement))
    with pytest.raises(NotAllowed, match="not data host elsewhere"):
        w.service.check_host_signature(other, statement, sign_statement(key, statement))
    with pytest.raises(NotAllowed):  # a signature over another statement
        w.service.check_host_signature(
            mine, {**statement, "job": "x"}, sign_statement(key, statement)
        )
