"""Which files of a job folder stay out of its code bundle.

Always left out, at any depth: ``.git`` and ``__pycache__``. A ``.c2dignore`` file at the top of
the folder adds gitignore-like patterns, one per line:

- blank lines and lines starting with ``#`` are skipped;
- ``*`` matches within one path part, ``?`` one character, ``[abc]`` a set, ``**`` any number of
  parts (``logs/**``, ``**/*.tmp``);
- a pattern without ``/`` matches a file or folder name at any depth (``*.csv``);
- a pattern with ``/`` is anchored at the top of the folder (``data/raw``, ``/notes.txt``);
- a trailing ``/`` matches folders only (``build/``); a matched folder leaves out all it holds.

Negation (``!pattern``) is not supported and is reported as an error rather than ignored,
because silently bundling files the author meant to keep would be worse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from jobs.errors import BundleError

IGNORE_FILE = ".c2dignore"
ALWAYS_IGNORED = (".git", "__pycache__")


def glob_to_regex(pattern: str) -> str:
    """Translate a path glob (``*``, ``?``, ``[...]``, ``**``) to an anchored regex."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and (end := pattern.find("]", i + 2)) != -1:
            body = pattern[i + 1 : end]
            negate = body.startswith(("!", "^"))
            body = body[1:] if negate else body
            # Escape everything but ranges, so no set operator or nested set reaches `re`.
            body = "".join("\\" + c if c in "\\[]&~|^" else c for c in body)
            out.append("[" + ("^" if negate else "") + body + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "^" + "".join(out) + "$"


@dataclass(frozen=True)
class _Rule:
    regex: re.Pattern[str]
    anchored: bool
    dir_only: bool
    source: str

    def matches(self, rel_path: str, is_dir: bool) -> bool:
        if self.dir_only and not is_dir:
            return False
        subject = rel_path if self.anchored else rel_path.rsplit("/", 1)[-1]
        return bool(self.regex.match(subject))


class IgnoreRules:
    """Decides whether a path (relative, ``/``-separated) is left out of a bundle."""

    def __init__(self, patterns: list[str] | None = None, source: str = IGNORE_FILE) -> None:
        self._rules: list[_Rule] = []
        for number, raw in enumerate(patterns or [], start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            where = f"{source} line {number}"
            if line.startswith("!"):
                raise BundleError(
                    f"{where}: negation ({line!r}) is not supported; list only what to leave out",
                    member=source,
                )
            dir_only = line.endswith("/")
            body = line.rstrip("/")
            anchored = "/" in body
            body = body.lstrip("/")
            if not body:
                raise BundleError(f"{where}: pattern {line!r} matches nothing", member=source)
            try:
                regex = re.compile(glob_to_regex(body))
            except re.error as exc:
                raise BundleError(f"{where}: bad pattern {line!r}: {exc}", member=source) from exc
            self._rules.append(_Rule(regex, anchored, dir_only, line))

    @classmethod
    def for_folder(cls, root: Path) -> IgnoreRules:
        """Rules from ``root/.c2dignore`` if it is a regular file, else only the defaults."""
        path = root / IGNORE_FILE
        if path.is_symlink() or not path.is_file():
            return cls()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise BundleError(f"cannot read {IGNORE_FILE}: {exc}", member=IGNORE_FILE) from exc
        return cls(text.splitlines())

    def ignored(self, rel_path: str, is_dir: bool) -> bool:
        """Tell whether ``rel_path`` is left out (its parents are checked by the caller)."""
        if rel_path.rsplit("/", 1)[-1] in ALWAYS_IGNORED:
            return True
        return any(rule.matches(rel_path, is_dir) for rule in self._rules)
