"""The client config: where it lives, who may read it, and which source wins."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from runner.client.config import (
    DEFAULT_URL,
    ClientConfig,
    ClientEnv,
    config_path,
    load_config,
    resolve_connection,
    save_config,
)
from runner.errors import ClientConfigError

SAVED = ClientConfig(url="http://saved:8700", token="saved-token", public_key="a2V5")


def env(**values: object) -> ClientEnv:
    return ClientEnv(**values)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("C2D_URL", "C2D_TOKEN", "C2D_CONFIG", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)


def test_saved_config_is_private_and_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "c2d" / "config.json"
    save_config(path, SAVED)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_config(path) == SAVED
    assert [p.name for p in path.parent.iterdir()] == ["config.json"]  # no temp file left


def test_saving_over_a_loose_file_makes_it_private(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("{}")
    path.chmod(0o644)
    save_config(path, SAVED)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_config_others_can_read_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    save_config(path, SAVED)
    path.chmod(0o644)
    conn = resolve_connection(None, None, env(config=path))
    assert conn.token == "saved-token"
    assert any("chmod 600" in w for w in conn.warnings)


def test_a_damaged_config_says_how_to_fix_it(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"url": "x"}))
    with pytest.raises(ClientConfigError, match="c2d login"):
        load_config(path)


def test_flags_beat_environment_beats_file(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    save_config(path, SAVED)
    from_file = resolve_connection(None, None, env(config=path))
    assert (from_file.url, from_file.token) == ("http://saved:8700", "saved-token")
    from_env = resolve_connection(None, None, env(config=path, url="http://env", token="e"))
    assert (from_env.url, from_env.token) == ("http://env", "e")
    from_flags = resolve_connection("http://flag", "f", env(config=path, url="http://env"))
    assert (from_flags.url, from_flags.token) == ("http://flag", "f")


def test_the_pinned_key_belongs_to_the_server_it_was_pinned_for(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    save_config(path, SAVED)
    assert resolve_connection(None, None, env(config=path)).public_key == "a2V5"
    assert resolve_connection("http://saved:8700/", None, env(config=path)).public_key == "a2V5"
    assert resolve_connection("http://other", None, env(config=path)).public_key is None


def test_nothing_configured_means_the_local_default_and_no_token(tmp_path: Path) -> None:
    conn = resolve_connection(None, None, env(config=tmp_path / "absent.json"))
    assert (conn.url, conn.token, conn.public_key) == (DEFAULT_URL, None, None)


def test_the_config_file_follows_xdg_and_can_be_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert config_path(ClientEnv.read()) == tmp_path / "xdg" / "c2d" / "config.json"
    monkeypatch.setenv("C2D_CONFIG", str(tmp_path / "mine.json"))
    assert config_path(ClientEnv.read()) == tmp_path / "mine.json"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.delenv("C2D_CONFIG")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert config_path(ClientEnv.read()) == tmp_path / "home" / ".config" / "c2d" / "config.json"
