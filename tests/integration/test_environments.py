"""The environment image is found by its recipe tag, never mistaken for an image built FROM it."""

from __future__ import annotations

import io

import pytest

from runner.host.images.environments import LABEL_RECIPE, build_environment, image_tag, resolve

pytestmark = pytest.mark.docker


def test_a_derived_image_with_inherited_labels_is_not_taken_for_the_environment(
    docker_client, job_image
) -> None:  # type: ignore[no-untyped-def]
    # A researcher's image built FROM the environment inherits its recipe label.
    child, _ = docker_client.images.build(
        fileobj=io.BytesIO(b"FROM c2d/python-ml:latest\nENV DERIVED=1\n"),
        rm=True,
        pull=False,
        labels={"c2d.test": "environments"},
    )
    try:
        assert (
            child.labels[LABEL_RECIPE] == docker_client.images.get(job_image).labels[LABEL_RECIPE]
        )
        result = build_environment(docker_client, "python-ml")
        assert not result.built  # up to date: nothing rebuilt
        assert result.image_id == job_image
        assert resolve(docker_client, "python-ml") == job_image
        assert docker_client.images.get(image_tag("python-ml")).id != child.id
    finally:
        docker_client.images.remove(child.id, force=True)
