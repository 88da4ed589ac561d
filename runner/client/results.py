"""A fetched, verified result, and loading its model with the trusted types in plain view.

A ``.skops`` file can name any Python type, and loading one runs that type's code; skops
loads only types it knows to be safe unless told otherwise. ``Result.load_model`` shows which
types a file needs beyond those (``untrusted_types``) and loads only when the caller has named
every one of them: nothing is trusted that the caller did not read.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from runner.client.verify import Fetched
from runner.errors import IntegrityError, MissingFile, UntrustedTypes

MODEL_SUFFIX = ".skops"


class Result:
    """What ``JobHandle.fetch`` saved, all of it checked (``runner.client.verify``)."""

    def __init__(self, fetched: Fetched) -> None:
        self.fetched = fetched

    def __repr__(self) -> str:
        names = ", ".join(f.name for f in self.fetched.files)
        return f"<c2d result of job {self.job_id} in {self.folder}: {names}>"

    @property
    def job_id(self) -> str:
        return self.fetched.job_id

    @property
    def folder(self) -> Path:
        return self.fetched.folder

    @property
    def files(self) -> list[Path]:
        """The saved outputs (not the receipt), each verified."""
        return [self.folder / f.name for f in self.fetched.files]

    @property
    def metrics(self) -> dict[str, float] | None:
        return self.fetched.metrics

    @property
    def receipt(self) -> Path:
        return self.fetched.receipt

    @property
    def key(self) -> str:
        """What the receipt was checked against: "given", "pinned" or "served" (the server's
        own key, which proves nothing against the server)."""
        return self.fetched.key

    def model_path(self, name: str | None = None) -> Path:
        """The output ``name``, or the one ``.skops`` file when there is exactly one."""
        if name is not None:
            path = self.folder / name
            if path not in self.files:
                raise MissingFile(f"job {self.job_id} left no output {name!r}")
            return path
        models = [p for p in self.files if p.name.endswith(MODEL_SUFFIX)]
        if len(models) != 1:
            found = ", ".join(p.name for p in models) or "none"
            raise MissingFile(
                f"job {self.job_id} left {len(models)} {MODEL_SUFFIX} files ({found}); "
                "name the one to load: load_model(name)"
            )
        return models[0]

    def untrusted_types(self, name: str | None = None) -> list[str]:
        """The types the model file needs beyond those skops trusts by itself."""
        import skops.io

        return sorted(skops.io.get_untrusted_types(file=self.model_path(name)))

    def load_model(self, name: str | None = None, *, trusted: Sequence[str] = ()) -> Any:
        """Load the model; ``trusted`` must name every type ``untrusted_types`` lists.

        Raises ``UntrustedTypes`` listing the types left to review (and how to pass them),
        ``IntegrityError`` if the file does not load as a skops model."""
        import skops.io

        path = self.model_path(name)
        needed = self.untrusted_types(name)
        missing = sorted(set(needed) - set(trusted))
        if missing:
            listed = ", ".join(repr(t) for t in missing)
            raise UntrustedTypes(
                f"{path.name} needs types skops does not trust by itself: {listed}. Loading "
                "runs their code; if you trust them, pass them: "
                f"load_model(trusted=[{listed}])"
            )
        try:
            return skops.io.load(path, trusted=list(needed))
        except Exception as exc:  # skops raises many kinds for a file it cannot read
            raise IntegrityError(f"{path} does not load as a skops model: {exc}") from exc
