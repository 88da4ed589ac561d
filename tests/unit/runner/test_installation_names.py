"""Installation ids and the Redis names built from them (runner.installation, runner.transport).

Two installations on one machine take the same default origin (``c2d/<hostname>``); their ids,
and so their queues' Redis keys, must differ all the same, and a data host must learn its
control plane's id when it enrolls. A state folder made before ids existed keeps its keys where
they were.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from runner.context import open_context
from runner.control.install import init_home
from runner.errors import SettingsError
from runner.host.agent import host_settings
from runner.host.identity import load_identity
from runner.host.pipeline import Ending, execute_job
from runner.installation import check_installation_id, with_installation
from runner.settings import Settings
from runner.transport import key_prefix, make_celery, queue_name
from tests.kit.worlds import build_control_world, settings_for

ORIGIN = "c2d/one-machine"


def prefixes(settings: Settings) -> tuple[str, str]:
    """The key prefix of the control plane at ``settings.home`` and of its ``local`` host's
    agent, each as its process finds it in its own state folder."""
    ctx = open_context(settings)
    try:
        control = key_prefix(ctx.settings)
    finally:
        ctx.close()
    host = settings.model_copy(update={"home": settings.hosts_dir / "local"})
    return control, key_prefix(host_settings(host, load_identity(host)))


def control_and_host_prefixes(tmp_path: Path) -> tuple[str, str]:
    settings = settings_for(tmp_path, origin=ORIGIN)
    init_home(settings)
    return prefixes(settings)


def test_two_installations_with_one_origin_have_apart_keys_their_hosts_share(tmp_path):
    first_control, first_host = control_and_host_prefixes(tmp_path / "first")
    second_control, second_host = control_and_host_prefixes(tmp_path / "second")

    assert first_control == first_host
    assert second_control == second_host
    assert first_control != second_control
    for prefix in (first_control, second_control):
        assert prefix.startswith("c2d:")
        assert ORIGIN not in prefix
        check_installation_id(prefix.split(":")[1])


def test_the_celery_app_puts_every_key_under_the_prefix(tmp_path):
    settings = with_installation(settings_for(tmp_path, installation="00112233445566778899"))
    options = make_celery(settings).conf.broker_transport_options
    assert options["global_keyprefix"] == "c2d:00112233445566778899:"
    assert queue_name("local") == "c2d.local"


def test_a_state_folder_made_before_ids_keeps_its_origin_as_prefix(tmp_path):
    settings = settings_for(tmp_path, origin=ORIGIN)
    init_home(settings)
    # As `c2d init` and `c2d host enroll` made their folders before ids existed:
    settings.installation_path.unlink()
    host_file = settings.hosts_dir / "local" / "host.json"
    facts = json.loads(host_file.read_text())
    del facts["installation"]
    host_file.write_text(json.dumps(facts))

    assert prefixes(settings) == (f"{ORIGIN}:", f"{ORIGIN}:")


def test_an_installation_setting_that_differs_from_the_folder_is_refused(tmp_path):
    settings = settings_for(tmp_path)
    init_home(settings)
    with pytest.raises(SettingsError, match="unset C2D_INSTALLATION"):
        open_context(settings.model_copy(update={"installation": "ffffffffffffffff"}))


@pytest.mark.parametrize("bad", ["", "short", "C0FFEE0123456789", "0123456789abcdef:x", "a" * 65])
def test_an_id_that_cannot_be_a_key_prefix_is_refused(bad):
    with pytest.raises(SettingsError, match="not an installation id"):
        check_installation_id(bad)


def test_a_run_message_for_a_job_the_control_plane_does_not_know_is_logged_as_misrouted(
    tmp_path, caplog
):
    world = build_control_world(tmp_path)
    try:
        with caplog.at_level(logging.INFO, logger="runner.host.pipeline"):
            ending = execute_job(world.ctx, "0123456789ab\x1b[2J", "local@test:1", poll_s=0.05)
    finally:
        world.close()

    assert ending is Ending.SKIPPED
    [record] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert record.getMessage().startswith("misrouted message: a run of job 0123456789ab")
    assert "on queue c2d.local " in record.getMessage()
    assert record.__dict__["event"] == "message.misrouted"
    assert record.__dict__["data_host"] == "local"
