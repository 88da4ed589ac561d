"""The client's configuration: which server, which token, which ledger key to trust.

Sources, strongest first: what the caller passes (the CLI's `--url`/`--token` flags, the
arguments of `runner.client.connect`); the `C2D_URL`/`C2D_TOKEN` environment; the file
`c2d login` writes (`$XDG_CONFIG_HOME/c2d/config.json`, default `~/.config/c2d/config.json`, or
`C2D_CONFIG`). The file holds a secret, so it is written with mode 0600 in a 0700 folder,
atomically, and a file others can read is reported.

Plain dataclasses, checked on construction: every `c2d` command reads this before it does
anything, and pydantic's import alone would cost a quick command a third of its time.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from runner.errors import ClientConfigError, UsageError

DEFAULT_URL = "http://127.0.0.1:8700"
_FIELDS = frozenset({"schema_version", "url", "token", "public_key"})


def check_url(url: str) -> str:
    """`url` without a trailing slash, if it is an http(s) URL with a host; else `UsageError`.

    `127.0.0.1:8700` alone would otherwise be read as a URL of scheme `127.0.0.1`, and every
    later command would fail with a message about something else.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(
            f"{url!r} is not an API URL: give the scheme and host, e.g. http://127.0.0.1:8700 "
            "or https://c2d.example.org"
        )
    return url.strip().rstrip("/")


@dataclass(frozen=True)
class ClientConfig:
    """What `c2d login` saved: the server, the token, and the ledger key pinned then."""

    url: str
    token: str
    public_key: str | None = None  # base64 of the raw 32-byte Ed25519 key
    schema_version: int = 1

    def __post_init__(self) -> None:
        for name in ("url", "token"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be a non-empty string")
        if self.public_key is not None and not isinstance(self.public_key, str):
            raise ValueError("public_key must be a string")
        if self.schema_version != 1:
            raise ValueError(f"schema_version {self.schema_version!r} is not 1")

    @classmethod
    def from_document(cls, doc: Any) -> ClientConfig:
        """The config a JSON document holds; ValueError (or TypeError) when it holds another."""
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
        unknown = sorted(set(doc) - _FIELDS)
        if unknown:
            raise ValueError(f"unknown fields {', '.join(unknown)}")
        return cls(**doc)

    def document(self) -> dict[str, Any]:
        """The JSON document written to the file."""
        return asdict(self)


@dataclass(frozen=True)
class ClientEnv:
    """The environment variables the client reads, read once at an entry point."""

    url: str | None = None
    token: str | None = None
    config: Path | None = None  # C2D_CONFIG: the client config file
    xdg_config_home: Path | None = None

    @classmethod
    def read(cls, environ: Mapping[str, str] | None = None) -> ClientEnv:
        """The client's variables from ``environ`` (default: this process's environment)."""
        env = os.environ if environ is None else environ

        def path(name: str) -> Path | None:
            return Path(env[name]) if env.get(name) else None

        return cls(
            url=env.get("C2D_URL") or None,
            token=env.get("C2D_TOKEN") or None,
            config=path("C2D_CONFIG"),
            xdg_config_home=path("XDG_CONFIG_HOME"),
        )


def config_path(env: ClientEnv) -> Path:
    """Where the client config file lives for this environment."""
    if env.config:
        return env.config
    base = env.xdg_config_home or Path.home() / ".config"
    return base / "c2d" / "config.json"


def loose_permissions(path: Path) -> bool:
    """Whether group or others may read or write `path`."""
    return bool(path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO))


def load_config(path: Path) -> ClientConfig | None:
    """Read the config file; None when there is none. Raises ClientConfigError when unusable."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ClientConfigError(f"cannot read {path}: {exc}") from exc
    try:
        return ClientConfig.from_document(json.loads(text))
    except (ValueError, TypeError) as exc:
        raise ClientConfigError(
            f"{path} is not a c2d client config ({exc}); run `c2d login URL` to write it again"
        ) from exc


def save_config(path: Path, config: ClientConfig) -> None:
    """Write `config` to `path` atomically with mode 0600 (folder 0700)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".config-", dir=path.parent)  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(config.document(), indent=2) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    os.chmod(path, 0o600)


def remove_config(path: Path) -> bool:
    """Delete the config file (`c2d logout`); whether there was one."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise ClientConfigError(f"cannot remove {path}: {exc}") from exc
    return True


@dataclass(frozen=True)
class Connection:
    """The server, token and pinned ledger key one command uses, and where each came from."""

    url: str
    token: str | None
    public_key: str | None
    config_file: Path
    warnings: tuple[str, ...] = ()


def resolve_connection(url_flag: str | None, token_flag: str | None, env: ClientEnv) -> Connection:
    """Combine flags, environment and the config file (strongest first)."""
    path = config_path(env)
    saved = load_config(path)
    warnings: list[str] = []
    if saved and loose_permissions(path):
        warnings.append(f"{path} holds a token but others may read it; run `chmod 600 {path}`")
    url = url_flag or env.url or (saved.url if saved else None) or DEFAULT_URL
    token = token_flag or env.token or (saved.token if saved else None)
    # A pinned key belongs to the server it was pinned for, not to whatever --url says now.
    same_server = saved is not None and saved.url.rstrip("/") == url.rstrip("/")
    key = saved.public_key if same_server and saved else None
    return Connection(url, token, key, path, tuple(warnings))
