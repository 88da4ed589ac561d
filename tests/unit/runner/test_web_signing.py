"""The server's half of signing in the browser: the page hands its script the statement the
service will rebuild, a browser key registers like `c2d login`'s, and a signed form is checked
as the CLI's is (the script itself runs in Chromium: tests/e2e/test_web_review.py)."""

from __future__ import annotations

import html
import json
import re

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from jobs.signed_actions import SignaturePolicy
from jobs.states import JobState
from jobs.user_keys import UserKeyStatement, public_key_text, sign_statement

S = JobState


def _statement(page: str, action: str) -> dict:
    """The ``data-statement`` of the form that posts to ``.../ACTION``."""
    form = re.search(rf'action="[^"]*/{action}" data-statement="([^"]*)"', page)
    assert form, page
    return json.loads(html.unescape(form.group(1)))


def _signing(page: str) -> dict[str, str]:
    found = re.search(r'id="signing"[^>]*data-origin="([^"]*)" data-user="([^"]*)" '
                      r'data-keys="([^"]*)"', page)  # fmt: skip
    assert found, page
    return {"origin": found.group(1), "user": found.group(2), "keys": found.group(3)}


def _browser_key(web, visitor, who="olga") -> Ed25519PrivateKey:
    """What sign.js does on first opening a page with a form to sign: make a key, sign the
    ``c2d/user-key`` statement with it, post it to /ui/keys with the session."""
    key = Ed25519PrivateKey.generate()
    public = public_key_text(key)
    origin = web.world.control.ledger.origin
    statement = UserKeyStatement(user=who, origin=origin, public_key=public)
    answer = visitor.post(
        "/ui/keys", {"public_key": public, "signature": sign_statement(key, statement)[0]}
    )
    assert answer.status_code == 201, answer.text
    return key


def _signed(key, statement: dict) -> str:
    signature, fingerprint = sign_statement(key, statement)
    return json.dumps({"statement": statement, "signature": signature, "key": fingerprint})


def test_the_review_page_hands_the_script_the_statements_the_service_checks(web):
    job = web.world.submit()
    owner = web.visitor("olga")
    page = owner.get(f"/ui/jobs/{job.id}/review").text
    signing = _signing(page)
    assert signing == {"origin": web.world.control.ledger.origin, "user": "olga", "keys": ""}
    approve = _statement(page, "approve")
    assert approve["type"] == "c2d/decision"
    assert (approve["job"], approve["decision"], approve["note"]) == (job.id, "approve", "")
    assert approve["code_digest"] == job.code_digest
    assert approve["dataset_digest"] == job.dataset_digest
    assert _statement(page, "reject")["decision"] == "reject"
    assert _statement(page, "trust")["params_digest"] == job.params_digest
    assert 'src="/ui/static/sign.js"' in page
    assert owner.get("/ui/static/sign.js").status_code == 200


def test_a_browser_key_registers_and_signs_an_approval_the_service_records(web):
    job = web.world.submit()
    owner = web.visitor("olga")
    key = _browser_key(web, owner)
    page = owner.get(f"/ui/jobs/{job.id}/review").text
    [fingerprint] = _signing(page)["keys"].split()
    # What the person typed: a browser sends the textarea's newline as CR LF.
    statement = {**_statement(page, "approve"), "note": "reads rows.csv\nonly"}
    answer = owner.post(
        f"/ui/jobs/{job.id}/approve",
        {"note": "reads rows.csv\r\nonly", "signed": _signed(key, statement)},
    )
    assert answer.status_code == 303, answer.text
    approved = web.world.control.ledger.entries_for(job.id)[-1]
    assert approved.type == "job.approved"
    assert approved.body["note"] == "reads rows.csv\nonly"
    assert approved.body["signed"]["key"] == fingerprint
    assert approved.body["signed"]["statement"] == statement


def test_a_signed_release_names_the_held_outputs(web):
    done = web.succeeded({"model.bin": b"weights", "metrics.json": b"{}"})
    owner = web.visitor("olga")
    key = _browser_key(web, owner)
    page = owner.get(f"/ui/jobs/{done.id}/outputs").text
    statement = _statement(page, "release")
    assert statement["type"] == "c2d/release"
    assert [o["name"] for o in statement["outputs"]] == ["metrics.json", "model.bin"]
    answer = owner.post(f"/ui/jobs/{done.id}/release", {"signed": _signed(key, statement)})
    assert answer.status_code == 303, answer.text
    released = web.world.control.ledger.entries_for(done.id)[-1]
    assert (released.type, released.body["signed"]["statement"]) == ("job.released", statement)


def test_an_owner_with_a_key_cannot_decide_unsigned_or_with_another_statement(web):
    job, other = web.world.submit(), web.world.submit(params={"n": 2})
    owner = web.visitor("olga")
    key = _browser_key(web, owner)
    size = web.world.control.ledger.size()
    unsigned = owner.post(f"/ui/jobs/{job.id}/approve", {"note": "ok"})
    assert unsigned.status_code == 403
    assert "a token alone cannot act" in unsigned.text
    # A signature made for another job's approval, replayed here.
    page = owner.get(f"/ui/jobs/{other.id}/review").text
    replayed = owner.post(
        f"/ui/jobs/{job.id}/approve", {"signed": _signed(key, _statement(page, "approve"))}
    )
    assert replayed.status_code == 422
    assert "its 'job' is" in html.unescape(replayed.text)
    garbled = owner.post(f"/ui/jobs/{job.id}/approve", {"signed": "{not json"})
    assert garbled.status_code == 422
    assert web.service.load_job(job.id).state is S.PENDING
    assert web.world.control.ledger.size() == size


def test_a_key_registration_needs_the_keys_own_signature_and_the_csrf_token(web):
    owner = web.visitor("olga")
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    origin = web.world.control.ledger.origin
    statement = UserKeyStatement(user="olga", origin=origin, public_key=public_key_text(key))
    forged = {"public_key": public_key_text(key), "signature": sign_statement(other, statement)[0]}
    assert owner.post("/ui/keys", forged).status_code == 403
    good = {"public_key": public_key_text(key), "signature": sign_statement(key, statement)[0]}
    assert owner.post("/ui/keys", good, csrf="").status_code == 403
    assert web.service.store.user_keys("olga") == []
    assert owner.post("/ui/keys", good).status_code == 201
    assert [k.public_key for k in web.service.store.user_keys("olga")] == [good["public_key"]]


def test_under_required_signatures_an_unsigned_form_says_how_to_sign(web):
    job = web.world.submit()
    web.service.signatures = SignaturePolicy.REQUIRED
    answer = web.visitor("olga").post(f"/ui/jobs/{job.id}/approve", {"note": "ok"})
    assert answer.status_code == 403
    assert "make one for your browser" in answer.text
    assert web.service.load_job(job.id).state is S.PENDING
