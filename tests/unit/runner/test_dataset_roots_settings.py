"""The dataset roots come from C2D_DATASET_ROOTS: absolute folders, none by default."""

from pathlib import Path

import pytest

from runner.cli.operator import build_settings
from runner.errors import SettingsError
from runner.host.datasets import roots_of as dataset_roots_from
from runner.settings import Settings


def test_no_roots_by_default(tmp_path: Path) -> None:
    roots = dataset_roots_from(Settings(home=tmp_path))
    assert roots.roots == ()
    assert roots.state == tmp_path


def test_roots_are_a_comma_separated_list_beside_the_state_folder(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", dataset_roots="/srv/a, /srv/b ,")
    assert settings.dataset_root_paths == (Path("/srv/a"), Path("/srv/b"))
    assert dataset_roots_from(settings).roots == (Path("/srv/a"), Path("/srv/b"))


def test_a_relative_root_stops_the_process_with_the_variable_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("C2D_DATASET_ROOTS", "/srv/a,data")
    with pytest.raises(SettingsError, match=r"C2D_DATASET_ROOTS: .*not absolute: data"):
        build_settings(home=tmp_path)
