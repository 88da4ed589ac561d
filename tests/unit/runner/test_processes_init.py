"""`c2d init` (runner.control.install.init_home): a private state folder, a key, one admin token."""

from __future__ import annotations

import json
import logging
import os
import stat
import sys
from pathlib import Path

import pytest

from jobs.models import Role
from jobs.service import token_hash
from runner.cli.main import run
from runner.context import SafeFormatter, open_context
from runner.control.install import init_home
from runner.errors import HomeExists, HomeNotInitialized
from tests.kit.worlds import settings_for


def test_init_makes_a_private_home_whose_token_is_the_admins(tmp_path):
    settings = settings_for(tmp_path)
    token = init_home(settings)

    assert stat.S_IMODE(settings.home.stat().st_mode) == 0o700
    assert stat.S_IMODE(settings.key_path.stat().st_mode) == 0o600
    ctx = open_context(settings)
    try:
        admin = ctx.service.authenticate(token)
        assert admin.role is Role.ADMIN
        files = [settings.db_path, settings.db_path.with_name("c2d.db-wal")]
        stored = b"".join(p.read_bytes() for p in files if p.exists())
        assert token_hash(token).encode() in stored  # what is kept is the hash...
        assert token.encode() not in stored  # ...never the token
        # The admin, and the data host `local` enrolled beside the control plane.
        assert [e.type for e in ctx.ledger.entries()] == [
            "user.added", "host.added", "host.enrolled",
        ]  # fmt: skip
        local = settings.hosts_dir / "local"
        assert stat.S_IMODE(local.stat().st_mode) == 0o700
        assert stat.S_IMODE((local / "host.key").stat().st_mode) == 0o600
        assert stat.S_IMODE((local / "host.token").stat().st_mode) == 0o600
    finally:
        ctx.close()


def test_init_without_a_local_host_makes_only_the_control_plane(tmp_path):
    # A control plane whose data hosts live on other machines (docker-compose.yml's api has
    # no engine): no host is added or enrolled, and no host state folder is made.
    settings = settings_for(tmp_path)
    token = init_home(settings, local_host=None)

    assert not settings.hosts_dir.exists()
    ctx = open_context(settings)
    try:
        assert ctx.service.authenticate(token).role is Role.ADMIN
        assert [e.type for e in ctx.ledger.entries()] == ["user.added"]
        assert ctx.service.list_hosts() == []
    finally:
        ctx.close()


def test_c2d_init_no_local_host_prints_the_token_and_no_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [n for n in os.environ if n.startswith("C2D_")]:
        monkeypatch.delenv(name)
    home = tmp_path / "control"
    monkeypatch.setenv("C2D_ORIGIN", "c2d.test/unit")

    assert run(["init", "--home", str(home), "--no-local-host", "--json"]) == 0

    doc = json.loads(capsys.readouterr().out)
    assert doc["hosts"] == []
    assert doc["home"] == str(home)
    assert not (home / "hosts").exists()
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    ctx = open_context(settings_for(tmp_path, home=home))
    try:
        assert ctx.service.authenticate(doc["token"]).role is Role.ADMIN
        assert ctx.service.list_hosts() == []
    finally:
        ctx.close()


def test_init_refuses_an_existing_installation_and_changes_nothing(tmp_path):
    settings = settings_for(tmp_path)
    init_home(settings)
    key = settings.key_path.read_bytes()
    db = settings.db_path.read_bytes()

    with pytest.raises(HomeExists):
        init_home(settings)

    assert settings.key_path.read_bytes() == key
    assert settings.db_path.read_bytes() == db


def test_init_refuses_a_folder_with_only_a_key(tmp_path):
    settings = settings_for(tmp_path)
    settings.home.mkdir()
    settings.key_path.write_text("someone's key")
    with pytest.raises(HomeExists):
        init_home(settings)


def test_opening_a_home_that_was_never_initialized_says_to_run_init(tmp_path):
    with pytest.raises(HomeNotInitialized, match="c2d init"):
        open_context(settings_for(tmp_path))


def test_log_lines_show_job_text_escaped_but_keep_tracebacks_lines() -> None:
    record = logging.LogRecord(
        "runner.host.pipeline",
        logging.WARNING,
        __file__,
        1,
        "job %s: %s",
        ("j1", "\x1b[2K\u202eok"),
        None,
    )
    line = SafeFormatter("%(name)s: %(message)s").format(record)
    assert line == "runner.host.pipeline: job j1: \\x1b[2K\\u202eok"
    try:
        raise ValueError("bad\x9b")
    except ValueError:
        record.exc_info = sys.exc_info()
    record.exc_text = None
    shown = SafeFormatter("%(message)s").format(record)
    assert "\nTraceback" in shown
    assert "ValueError: bad\\x9b" in shown
