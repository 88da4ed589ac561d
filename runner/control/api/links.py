"""OpenAPI links: how a client goes from a job (submitted, or listed) to its status and what
it left.

A link names the operation it leads to (its ``operationId``, set on that route) and where the
next request's parameters come from in this answer. They are what ``c2d submit`` then
``c2d status`` then ``c2d fetch`` do, written down for other clients, and what schemathesis's
stateful phase follows in CI (``tests/integration/test_openapi_schemathesis.py``).
"""

from __future__ import annotations

from typing import Any

GET_JOB = "get_job"
LIST_ARTIFACTS = "list_artifacts"
GET_ARTIFACT = "get_artifact"
GET_RECEIPT = "get_receipt"


def job_links(job_id: str) -> dict[str, Any]:
    """Links from an answer that names a job (``job_id``: a runtime expression such as
    ``$response.body#/id``, or ``$response.body#/0/id`` for the first of a list) to its
    status, its artifacts and its receipt."""
    return {
        name: {"operationId": operation, "parameters": {"job_id": job_id}}
        for name, operation in (
            ("GetJob", GET_JOB),
            ("ListArtifacts", LIST_ARTIFACTS),
            ("GetReceipt", GET_RECEIPT),
        )
    }


def artifact_links() -> dict[str, Any]:
    """From a job's artifact list to the first artifact's bytes."""
    return {
        "GetArtifact": {
            "operationId": GET_ARTIFACT,
            "parameters": {"job_id": "$request.path.job_id", "name": "$response.body#/0/name"},
        }
    }


def linked(status: int, links: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` entry of an answer with ``links`` (joined with ``errors(...)``)."""
    return {status: {"links": links}}
