"""A job that brings its own image: the spec form, the combined code digest, what is stored."""

import hashlib

import pytest
import rfc8785

from jobs.errors import InvalidRequest, SpecError
from jobs.images import ImageRecord, image_code_digest, log_digest
from jobs.spec import JobSpec
from jobs.states import JobState
from tests.kit.worlds import IMAGE

BASE = "name: t\ncommand: [python, train.py]\n"


def _record(bundle: str, image: str = IMAGE) -> ImageRecord:
    return ImageRecord(
        bundle_digest=bundle,
        image_id=image,
        source="dockerfile",
        dockerfile="Dockerfile",
        build_log_digest=log_digest("Step 1/1 : FROM base\n"),
        details={"facts": {"user": "root"}},
    )


def test_spec_accepts_a_dockerfile_build():
    spec = JobSpec.parse_yaml(BASE + "image: {build: docker/Dockerfile}\n")
    assert spec.image is not None
    assert spec.image.build == "docker/Dockerfile"


def test_spec_refuses_an_image_beside_another_environment():
    with pytest.raises(SpecError, match=r"either `image: \{build: Dockerfile\}` or `environment:`"):
        JobSpec.parse_yaml(BASE + "environment: other\nimage: {build: Dockerfile}\n")


@pytest.mark.parametrize(
    ("image", "message"),
    [
        ("{build: ../Dockerfile}", "image.build: must not contain '..'"),
        ("{build: Dockerfile, pull: true}", r"image.pull: unknown field \(allowed: fields build\)"),
        ("{}", "image.build: Field required"),
    ],
)
def test_spec_refuses_bad_image_forms(image, message):
    with pytest.raises(SpecError, match=message):
        JobSpec.parse_yaml(BASE + f"image: {image}\n")


def test_code_digest_covers_bundle_and_image():
    bundle = "sha256:" + "a" * 64
    expected = (
        "sha256:" + hashlib.sha256(rfc8785.dumps({"bundle": bundle, "image": IMAGE})).hexdigest()
    )
    assert image_code_digest(bundle, IMAGE) == expected
    assert image_code_digest(bundle, "sha256:" + "2" * 64) != expected


def test_submit_binds_the_combined_digest_and_keeps_the_bundle_digest(world):
    spec, bundle, files = world.code()
    record = _record(bundle)
    job = world.service.submit(world.rita, spec, None, bundle, files, IMAGE, None, record)
    assert job.code_digest == image_code_digest(bundle, IMAGE) != bundle
    assert world.service.job_image(job.id) == record
    assert world.service.bundle_digest(job) == bundle
    [entry] = world.ledger.entries_for(job.id)
    assert entry.body["code_digest"] == job.code_digest
    assert entry.body["own_image"]["bundle_digest"] == bundle
    assert entry.body["own_image"]["build_log_digest"] == record.build_log_digest
    approved = world.service.approve(world.olga, job.id, "ok")
    assert approved.approval is not None
    assert approved.approval.code_digest == job.code_digest
    assert IMAGE in world.service.images_in_use()


def test_a_plain_job_stores_no_image_record(world):
    job = world.submit()
    assert world.service.job_image(job.id) is None
    assert world.service.bundle_digest(job) == job.code_digest


def test_submit_refuses_a_record_for_another_bundle_and_stores_nothing(world):
    spec, bundle, files = world.code()
    other = _record("sha256:" + "b" * 64)
    with pytest.raises(InvalidRequest, match="does not match"):
        world.service.submit(world.rita, spec, None, bundle, files, IMAGE, None, other)
    assert world.service.list_jobs(world.rita) == []
    assert world.store.image_ids_in_states((JobState.PENDING,)) == set()
