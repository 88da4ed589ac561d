"""Mock data made on a person's machine from a dataset's schema (``c2d dataset mock``,
``c2d run --mock``): the same layout, names, columns and types, and nothing of the data beyond
what the schema shows (``jobs.mock``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # pandas and numpy come with these; every `c2d` command would pay for them at start-up.
    from jobs.mock import MockResult
    from jobs.profile import DatasetProfile, Level


def mock_from_schema(
    doc: dict[str, Any], out_dir: Path, *, rows: int | None, seed: int
) -> MockResult:
    """Write mock data from a schema document (`GET /v1/datasets/NAME/schema`) into `out_dir`.

    A researcher's document is already the policy's view; the owner's is the whole profile,
    which is mocked at the level the data host's dry runs use, so both get the same files.
    Raises `NotAllowed` (exit 4) when the schema is hidden.
    """
    from jobs.mock import write_mock
    from jobs.profile import DatasetProfile

    profile = DatasetProfile.model_validate(doc["profile"])
    if doc.get("full"):
        level: Level = "columns" if doc["schema"] == "hidden" else doc["schema"]
        public = doc.get("public_values") or None
    else:
        level = profile.redacted_to or doc["schema"]
        public = shown_public(profile)
    return write_mock(profile, out_dir, level=level, rows=rows, seed=seed, public=public)


def shown_public(view: DatasetProfile) -> dict[str, list[str]]:
    """The public columns of a researcher's view: a view keeps values for those alone."""
    public: dict[str, list[str]] = {}
    for entry in view.files:
        names = [c.name for c in entry.columns or () if c.values is not None]
        if names:
            public[entry.path] = names
    return public
