"""Fixtures for the job service tests (helpers live in jobs_world.py)."""

from __future__ import annotations

import pytest

from tests.kit.worlds import build_world


def _finish(w):
    """After every test, whatever it did, the whole log must still verify."""
    if not w.tampered:
        report = w.ledger.verify()
        assert report.ok, report.detail
    w.store.close()
    w.ledger.close()


@pytest.fixture
def world(tmp_path):
    w = build_world(tmp_path)
    yield w
    _finish(w)


@pytest.fixture
def reviewed_world(tmp_path):
    """A world whose dataset policy makes the owner release outputs by hand."""
    w = build_world(tmp_path, review_outputs=True)
    yield w
    _finish(w)


@pytest.fixture
def new_world(tmp_path):
    """Build a world with options (ledger class, policy, limits); each is checked and closed."""
    made = []

    def make(**options):
        w = build_world(tmp_path / f"w{len(made)}", **options)
        made.append(w)
        return w

    yield make
    for w in made:
        _finish(w)
