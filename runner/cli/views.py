"""How a job, its dry run and its own image are shown to people (shared by the command modules).

Everything a job controls passes through ``runner.cli.output``, which escapes it.
"""

from __future__ import annotations

import json
from typing import Any

from jobs.safe_text import one_line
from runner.cli.dataset_checks import check_rows
from runner.cli.output import Output


def _seconds(value: Any) -> str | None:
    return f"{value:.1f} s" if isinstance(value, int | float) else None


def show_job(out: Output, job: dict[str, Any]) -> None:
    """The people view of one job."""
    outcome = job.get("outcome") or {}
    rows: list[tuple[str, Any]] = [
        ("id", job["id"]),
        ("name", job.get("name")),
        ("state", job["state"]),
        ("reason", job.get("reason")),
        ("dataset", job.get("dataset")),
        ("researcher", job.get("researcher")),
        ("code", job.get("code_digest")),
        ("created", job.get("created")),
        ("started", job.get("started")),
        ("finished", job.get("finished")),
    ]
    if outcome:
        rows += [
            ("exit code", outcome.get("exit_code")),
            ("duration", _seconds(outcome.get("duration_s"))),
            ("outputs", ", ".join(o["name"] for o in outcome.get("outputs") or [])),
            ("metrics", json.dumps(outcome.get("metrics"), sort_keys=True)),
            *check_rows(outcome.get("checks") or []),
        ]
    out.fields(rows)


def dryrun_lines(dryrun: dict[str, Any] | None) -> list[tuple[str, Any]]:
    """The `key: value` lines of a dry run (`GET /v1/jobs/ID/dryrun` or review's `dryrun`)."""
    if dryrun is None:
        return [("dry run", "not run yet: the data host runs it soon after submission")]
    if dryrun.get("withheld") and "ok" not in dryrun:
        return [("dry run", dryrun.get("note"))]
    verdict = "ok" if dryrun["ok"] else "FAILED"
    seconds = dryrun.get("duration_s") or 0.0
    declared = ", ".join(dryrun.get("declared") or []) or "(metrics.json only)"
    mock = dryrun.get("mock_digest")
    rows = dryrun.get("max_rows")
    return [
        ("dry run", f"{verdict}: {dryrun['reason']} ({seconds:.1f} s, on mock data only)"),
        ("mock data", f"{mock} ({dryrun.get('level')}, at most {rows} rows)" if mock else None),
        ("declared", declared),
        ("produced", ", ".join(dryrun.get("produced") or []) or "nothing collected"),
        ("missing", ", ".join(dryrun.get("missing") or []) or None),
        ("not declared", ", ".join(dryrun.get("ignored") or []) or None),
        (
            "metrics",
            json.dumps(dryrun["metrics"], sort_keys=True) if dryrun.get("metrics") else None,
        ),
    ]


def show_dryrun(out: Output, dryrun: dict[str, Any] | None) -> None:
    """The dry run's verdict, what it left and the end of its log."""
    out.fields(dryrun_lines(dryrun))
    tail = (dryrun or {}).get("log_tail")
    if tail:
        cut = " (its end)" if dryrun and dryrun.get("log_truncated") else ""
        out.say(f"dry run log{cut}:")
        out.text_block(tail)


SANDBOX_NOTE = (
    "whatever the image says, the job runs as the sandbox's unprivileged user, with no network, "
    "a read-only root, no capabilities and the job's limits"
)


def _words(value: list[str] | None) -> str:
    return "(none)" if not value else " ".join(value)


def _size(n: int) -> str:
    from jobs.units import describe_size

    return f"{describe_size(n)} ({n} bytes)"


def show_own_image(out: Output, image: dict[str, Any]) -> None:
    """The ``image`` section of a review: facts, Dockerfile and its diff, build log."""
    facts = image.get("facts") or {}
    base = facts.get("base") or "(no allowed base!)"
    layers, base_layers = facts.get("layers", 0), facts.get("base_layers", 0)
    how = image.get("source")
    out.say("")
    out.say(f"the job brings its own image ({one_line(how)}):")
    out.fields(
        [
            ("image", facts.get("image_id")),
            ("base", f"{base} ({facts.get('base_id')})"),
            ("size", _size(int(facts.get("size", 0)))),
            ("layers", f"{layers} ({base_layers} from the base, {layers - base_layers} added)"),
            ("USER", facts.get("user") or "(none: root)"),
            ("ENTRYPOINT", _words(facts.get("entrypoint")) + " (the sandbox resets it)"),
            ("CMD", _words(facts.get("cmd")) + " (the job's command replaces it)"),
            ("env keys", ", ".join(facts.get("env_keys") or []) or "(none)"),
            ("workdir", facts.get("workdir") or "/"),
            ("archive", image.get("archive_sha256")),
            ("archive tags", ", ".join(image.get("archive_tags") or []) or None),
            ("build log", image.get("build_log_digest")),
        ]
    )
    out.say(SANDBOX_NOTE)
    if image.get("dockerfile"):
        out.say("")
        out.say(f"{one_line(image['dockerfile'])}:")
        out.text_block(image.get("dockerfile_text") or "", syntax="docker")
        out.say("its changes since the previous approved job's:")
        out.text_block(image.get("dockerfile_diff") or "(unchanged)\n", syntax="diff")
    if image.get("build_log"):
        out.say("")
        out.say("build log:")
        out.text_block(image["build_log"])
