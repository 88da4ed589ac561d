"""Signing in the browser: the owner's decisions carry her signature, as from the CLI.

A browser holds its own Ed25519 key, made by ``static/sign.js`` with WebCrypto as a
non-extractable key kept in the browser's IndexedDB: the page can ask it to sign, nobody can
read it out, and it never comes here. The script registers its public half as one more key of
the signed-in person (``POST /ui/keys``: the ``c2d/user-key`` statement signed by that key,
checked by ``Service.register_key`` like `c2d login`'s), so the ledger's ``user.key`` entry
names it as any other key of hers.

A form that acts (approve, reject, trust, release) carries the statement of that action as
the server builds it (``jobs.signed_actions``, the same builders the CLI and the service use)
in its ``data-statement``; the script puts in what the person typed (the note), signs the
canonical JSON, and sends the envelope in the form's ``signed`` field. The service then checks
it exactly as it checks the CLI's (``check_signed``), under the installation's
``SignaturePolicy``.

What this does not protect against: the pages and their script come from the control plane,
so an operator who changes the script can have an open page sign something else. The key
stays in the browser, so what the operator cannot do is sign later without the person's
browser, or rewrite a signed entry.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from jobs.errors import InvalidRequest
from jobs.models import User
from jobs.signed_actions import ActionStatement, SignedEnvelope, envelope_of
from runner.control.api.deps import State
from runner.control.api.keys import key_view
from runner.control.web.sessions import PATH, Form, Posted

router = APIRouter(prefix=PATH, include_in_schema=False)


def signing(state: State, user: User) -> dict[str, Any]:
    """What a page's script needs to sign as ``user``: the server's origin and the
    fingerprints of her keys that are not revoked (a browser key among them is used as it is;
    otherwise the script makes one and registers it)."""
    keys = [k.fingerprint for k in state.ctx.service.list_keys(user) if k.revoked is None]
    return {"origin": state.ctx.ledger.origin, "user": user.name, "keys": keys}


def statement_json(statement: ActionStatement) -> str:
    """The statement as a form's ``data-statement`` carries it (the template escapes it)."""
    return json.dumps(statement.model_dump(mode="json"), sort_keys=True)


def signed_field(sent: Posted) -> SignedEnvelope | None:
    """The envelope the script put in the form's ``signed`` field, or None if it is empty."""
    text = sent.text("signed")
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        raise InvalidRequest(
            "the form's signature is not JSON; open the page again and send it from there"
        ) from None
    return envelope_of(data if isinstance(data, dict) else {"statement": data})


@router.post("/keys")
def register(sent: Form, state: State) -> JSONResponse:
    """Register this browser's public key for the signed-in person (the script's call), as
    ``POST /v1/me/keys`` does for `c2d login`."""
    key = state.ctx.service.register_key(
        sent.viewer.user, sent.text("public_key"), sent.text("signature")
    )
    return JSONResponse(key_view(key), status_code=201)
