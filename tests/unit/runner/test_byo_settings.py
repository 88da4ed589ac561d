"""The host's rules for jobs' own images come from the C2D_BYO_* settings."""

import pytest
from pydantic import ValidationError

from runner.host.engine import byo_policy_from
from runner.settings import Settings


def test_defaults_allow_only_the_default_environment(tmp_path):
    policy = byo_policy_from(Settings(home=tmp_path))
    assert policy.allowed_bases == ("c2d/python-ml:latest",)
    assert policy.max_image_bytes == 4 * 1024**3


def test_settings_set_bases_and_caps(tmp_path):
    settings = Settings(
        home=tmp_path,
        byo_allowed_bases="c2d/python-ml:latest, c2d/r:latest",
        byo_max_image="1GiB",
        byo_max_archive="512MiB",
        byo_max_layers=10,
        byo_max_build_s=60,
    )
    policy = byo_policy_from(settings)
    assert policy.allowed_bases == ("c2d/python-ml:latest", "c2d/r:latest")
    assert (policy.max_image_bytes, policy.max_archive_bytes) == (1024**3, 512 * 1024**2)
    assert (policy.max_layers, policy.max_build_s) == (10, 60)


def test_an_empty_or_malformed_base_list_is_refused(tmp_path):
    with pytest.raises(ValidationError, match="allow at least one base image"):
        byo_policy_from(Settings(home=tmp_path, byo_allowed_bases=" , "))
    with pytest.raises(ValidationError, match="is not an image name or ID"):
        byo_policy_from(Settings(home=tmp_path, byo_allowed_bases="../etc"))
