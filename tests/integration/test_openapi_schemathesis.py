"""The API's OpenAPI document tells the truth: schemathesis's full checks against a live API.

A real installation (the API over HTTP, the local data host's hello, a dataset whose owner
reviews outputs) and a token for each role: admin, owner, researcher, and the data host's
credential. For each, the schemathesis CLI runs every phase (examples, coverage, fuzzing,
stateful) with every check, which is its default: no server error; every status, content
type, header and body as documented; schema-valid requests accepted and invalid ones refused;
an undeclared method answered 405 with ``Allow``. The stateful phase follows the document's
links from a submitted job to its status, artifacts and receipt (the hooks submit a real job,
``schemathesis_hooks``).

What is left out is in ``EXCLUDED`` and ``CONFIG``, each with its reason. The examples are
bounded per operation and the seed fixed, so the four runs take about a minute and a failure
can be replayed (the report says how: ``st replay ID``, or the curl line).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kit.data import counting_job, make_dataset
from tests.kit.installation import Installation, module_installation
from tests.kit.procs import redis_db_url, wait_for

pytestmark = [pytest.mark.docker, pytest.mark.redis, pytest.mark.slow]

REDIS_DB = 2
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
MAX_EXAMPLES = 5
SEED = 19
EXCLUDED = {
    # Server-sent events: the stream stays open until the job ends, which a job nobody
    # approves never does (tests/e2e/test_cli_push_and_live_logs.py reads it as `c2d status
    # --wait` does).
    "GET /v1/jobs/{job_id}/events": r"/events$",
    # Rotating the caller's own token ends the token the run signs in with: every request
    # after it would be a 401 (tests/integration/test_people_http.py rotates and checks).
    "POST /v1/me/token": r"^/v1/me/token$",
}
CONFIG = """\
headers = { Authorization = "Bearer ${C2D_ST_TOKEN}" }

# POST /v1/jobs is a multipart form whose `spec` part is JSON text: JSON Schema can say so
# (contentMediaType) but not constrain it, so a schema-valid form is not a valid submission
# and "schema-valid requests are accepted" cannot hold. Every other check runs on it, and the
# hooks send real submissions, which the stateful phase follows from.
[[operations]]
include-path = "/v1/jobs"
include-method = "POST"
checks.positive_data_acceptance.enabled = false

# /v1/ready answers 503 with its report when a check fails (here: the data host, whose
# agent is stopped, has not said hello lately), as its document says; any other 5xx from it
# is still a server error.
[[operations]]
include-path = "/v1/ready"
include-method = "GET"
checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "503"]

# The stateful phase follows the links the document declares (not ones schemathesis guesses),
# in more scenarios than the other phases' examples, so each link is walked in a short run.
[phases.stateful]
inference.algorithms = []
generation.max-examples = 60
"""

# What `c2d submit`, `c2d status` and `c2d fetch` do, as links the stateful phase must walk.
FETCH = (
    "POST /v1/jobs -> [201] GetJob -> GET /v1/jobs/{job_id}",
    "GET /v1/jobs/{job_id} -> [200] ListArtifacts -> GET /v1/jobs/{job_id}/artifacts",
    "GET /v1/jobs/{job_id}/artifacts -> [200] GetArtifact -> "
    "GET /v1/jobs/{job_id}/artifacts/{name}",
)


@pytest.fixture(scope="module")
def install(tmp_path_factory, redis_url, docker_client, job_image) -> Iterator[Installation]:
    url = redis_db_url(redis_url, REDIS_DB)
    with module_installation(tmp_path_factory.mktemp("openapi"), url, docker_client) as made:
        made.start_server()
        made.hello()
        yield made


@pytest.fixture(scope="module")
def tokens(install, tmp_path_factory) -> dict[str, str]:
    """A token for each role, on a dataset whose owner reviews outputs."""
    owner = install.add_user("owner")[1]
    researcher = install.add_user("researcher", prefix="st-researcher")[1]
    root = tmp_path_factory.mktemp("openapi-data")
    done = install.dataset_add(
        owner, "st-data", make_dataset(root / "data", rows=20), "--review-outputs"
    )
    assert done.returncode == 0, done.stderr
    released_job(install, owner, researcher, root)
    return {
        "admin": install.admin_token,
        "owner": owner,
        "researcher": researcher,
        "host": install.settings.model_copy(update={"home": install.host_home})
        .host_token_path.read_text()
        .strip(),
    }


def released_job(install: Installation, owner: str, researcher: str, root: Path) -> str:
    """A job of the researcher that ran and whose outputs its owner released, so the links
    from the job list reach artifacts that can be fetched. The worker stops once the outputs
    are uploaded: the runs' own submissions then wait, and start no dry run."""
    worker = install.start_worker()
    job_id = str(install.submit_http(researcher, counting_job(root / "done", "st-data"))["id"])
    with install.client(owner) as person:
        person.approve(job_id)
        install.wait_ended(job_id)
        person.release(job_id)

        def uploaded() -> bool:
            return all(a["available"] for a in person.artifacts(job_id))

        wait_for("the released outputs to be uploaded", uploaded, 60, install.logs())
    worker.stop()
    return job_id


def run_schemathesis(install: Installation, token: str, job_dir: Path, out: Path) -> str:
    """The CLI over real HTTP as the holder of ``token`` (in the environment, not argv)."""
    config = out / "schemathesis.toml"
    config.write_text(CONFIG)
    env = {
        **os.environ,
        "C2D_ST_TOKEN": token,
        "C2D_ST_JOB_DIR": str(job_dir),
        "SCHEMATHESIS_HOOKS": "tests.integration.schemathesis_hooks",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    args = [
        str(SCHEMATHESIS),
        "--config-file",
        str(config),
        "run",
        f"{install.url}/openapi.json",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--request-timeout",
        "60",
        "--workers",
        "1",
        *(f"--exclude-path-regex={pattern}" for pattern in EXCLUDED.values()),
        "--report=ndjson",
        f"--report-ndjson-path={out / 'events.ndjson'}",
    ]
    done = subprocess.run(
        args, env=env, capture_output=True, text=True, timeout=600, check=False, cwd=out
    )
    report = done.stdout + done.stderr
    assert done.returncode == 0, f"schemathesis found what the document does not say:\n{report}"
    return report


@pytest.mark.parametrize("role", ["researcher", "owner", "admin", "host"])
def test_the_api_answers_as_its_document_says(install, tokens, role, tmp_path):
    job_dir = counting_job(tmp_path / "job", "st-data")
    run_schemathesis(install, tokens[role], job_dir, tmp_path)
    if role == "researcher":
        # The hooks' real submissions were recorded, and the stateful phase walked the links
        # from one to its status, and from the job list down to a released artifact's bytes.
        mine = install.query("SELECT COUNT(*) FROM jobs WHERE researcher LIKE 'st-researcher-%'")
        assert mine[0][0] > 1
        walked = (tmp_path / "events.ndjson").read_text()
        for step in FETCH:
            assert step in walked, step
