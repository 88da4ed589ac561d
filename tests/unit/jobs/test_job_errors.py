"""Every error of the job domain says how the edge must report it."""

import inspect

import jobs.errors as errors

KINDS = {
    "invalid",
    "not_found",
    "not_allowed",
    "unauthenticated",
    "conflict",
    "too_large",
    "unavailable",
    "failed",
}


def all_errors():
    return [
        c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, errors.JobsError)
    ]


def test_every_error_has_a_known_kind():
    classes = all_errors()
    assert len(classes) >= 14
    for cls in classes:
        assert cls.kind in KINDS, cls


def test_the_kinds_the_brief_asks_for():
    assert errors.SpecError.kind == "invalid"
    assert errors.BundleError.kind == "invalid"
    assert errors.NotFound.kind == "not_found"
    assert errors.NotAllowed.kind == "not_allowed"
    assert errors.Unauthenticated.kind == "unauthenticated"
    assert errors.Conflict.kind == errors.InvalidTransition.kind == "conflict"
    assert errors.LeaseLost.kind == "conflict"
    assert errors.TooLarge.kind == "too_large"
    assert errors.DigestMismatch.kind == "failed"
    assert errors.StoreUnavailable.kind == "unavailable"


def test_messages_say_what_happened_and_what_to_do():
    err = errors.InvalidTransition("succeeded", "approved", "job0001")
    assert (err.from_state, err.to_state) == ("succeeded", "approved")
    assert "c2d status job0001" in str(err)
    mismatch = errors.DigestMismatch([("image", "sha256:a", "sha256:b")])
    assert "image digest changed (approved sha256:a, now sha256:b)" in str(mismatch)
    assert "submitted and approved again" in str(mismatch)
    limit = errors.LimitExceeded("memory", "4GiB", "2GiB", "dataset 'iris'")
    assert str(limit).startswith("resources.memory: 4GiB requested, but dataset 'iris' allows")
