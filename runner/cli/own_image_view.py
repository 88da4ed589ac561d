"""How ``c2d review`` shows a job's own image: how it was made, what it says, what was built."""

from __future__ import annotations

from typing import Any

from jobs.safe_text import one_line
from jobs.units import describe_size
from runner.cli.output import Output

SANDBOX_NOTE = (
    "whatever the image says, the job runs as the sandbox's unprivileged user, with no network, "
    "a read-only root, no capabilities and the job's limits"
)


def _words(value: list[str] | None) -> str:
    return "(none)" if not value else " ".join(value)


def _size(n: int) -> str:
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
