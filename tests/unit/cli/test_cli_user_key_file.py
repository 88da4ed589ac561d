"""The person's key file: made private beside the saved login, never overwritten, and refused
with what to do when it is missing, exposed or not a key."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from jobs.user_keys import public_key_text
from runner.client.config import ClientEnv
from runner.client.keys import create_key, key_path, load_key
from runner.errors import KeyFileError


def test_the_key_lives_beside_the_saved_login_named_after_it(tmp_path: Path):
    assert key_path(ClientEnv(config=tmp_path / "alice.json")) == tmp_path / "alice.key"
    home = ClientEnv(xdg_config_home=tmp_path)
    assert key_path(home) == tmp_path / "c2d" / "config.key"


def test_a_new_key_is_private_in_a_private_folder_and_loads_back(tmp_path: Path):
    path = tmp_path / "c2d" / "config.key"
    key = create_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert public_key_text(load_key(path)) == public_key_text(key)


def test_an_existing_file_is_never_overwritten(tmp_path: Path):
    path = tmp_path / "config.key"
    path.write_bytes(b"keep me")
    with pytest.raises(KeyFileError, match="exists already"):
        create_key(path)
    assert path.read_bytes() == b"keep me"


def test_missing_exposed_or_damaged_files_say_what_to_do(tmp_path: Path):
    path = tmp_path / "config.key"
    with pytest.raises(KeyFileError, match=r"no signing key.*c2d login"):
        load_key(path)
    create_key(path)
    path.chmod(0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_key(path)
    path.write_bytes(b"-----BEGIN PRIVATE KEY-----\ngarbage\n")
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match="not an Ed25519 private key"):
        load_key(path)
    assert path.read_bytes() == b"-----BEGIN PRIVATE KEY-----\ngarbage\n"
    link = tmp_path / "link.key"
    link.symlink_to(path)
    with pytest.raises(KeyFileError, match="cannot read"):
        load_key(link)
