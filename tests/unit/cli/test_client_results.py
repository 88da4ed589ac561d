"""A fetched model loads only with the types it needs named by the caller: shown, not hidden."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.client.download import Downloaded
from runner.client.results import Result
from runner.client.verify import Fetched
from runner.errors import MissingFile, UntrustedTypes


def fetched(folder: Path, *names: str) -> Result:
    files = tuple(
        Downloaded(name=n, path=folder / n, sha256="sha256:" + "0" * 64, bytes=1) for n in names
    )
    return Result(
        Fetched(
            job_id="job-1",
            folder=folder,
            files=files,
            metrics=None,
            receipt=folder / "receipt.json",
            log_size=1,
            key="pinned",
            job={},
        )
    )


def test_a_model_loads_once_its_types_are_named(tmp_path: Path) -> None:
    import skops.io
    from sklearn.tree import DecisionTreeClassifier

    model = DecisionTreeClassifier(max_depth=2).fit([[0], [1], [2], [3]], [0, 0, 1, 1])
    skops.io.dump(model, tmp_path / "model.skops")
    result = fetched(tmp_path, "model.skops", "metrics.json")
    needed = result.untrusted_types()
    assert needed == ["sklearn.tree._tree.Tree"]
    with pytest.raises(UntrustedTypes, match=r"sklearn\.tree\._tree\.Tree") as refused:
        result.load_model()
    assert "load_model(trusted=['sklearn.tree._tree.Tree'])" in str(refused.value)
    loaded = result.load_model(trusted=needed)
    assert loaded.predict([[3]]).tolist() == [1]


def test_which_model_to_load_must_be_clear(tmp_path: Path) -> None:
    with pytest.raises(MissingFile, match=r"0 \.skops files"):
        fetched(tmp_path, "metrics.json").model_path()
    with pytest.raises(MissingFile, match=r"no output 'other\.skops'"):
        fetched(tmp_path, "a.skops").model_path("other.skops")
