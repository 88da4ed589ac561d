"""The client's configuration: which server, which token, which ledger key to trust.

Sources, strongest first: the `--url`/`--token` flags; the `C2D_URL`/`C2D_TOKEN` environment;
the file `c2d login` writes (`$XDG_CONFIG_HOME/c2d/config.json`, default
`~/.config/c2d/config.json`, or `C2D_CONFIG`). The file holds a secret, so it is written with
mode 0600 in a 0700 folder, atomically, and a file others can read is reported.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from runner.errors import ClientConfigError

DEFAULT_URL = "http://127.0.0.1:8700"


class ClientConfig(BaseModel):
    """What `c2d login` saved."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    url: str = Field(min_length=1)
    token: str = Field(min_length=1)
    public_key: str | None = None  # the ledger key pinned at login (base64 raw 32 bytes)


class ClientEnv(BaseSettings):
    """The environment variables the client reads (only at the CLI's entry point)."""

    model_config = SettingsConfigDict(env_prefix="C2D_", extra="ignore", frozen=True)

    url: str | None = None
    token: str | None = None
    config: Path | None = Field(default=None, description="Path of the client config file.")
    xdg_config_home: Path | None = Field(default=None, validation_alias="XDG_CONFIG_HOME")


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
        return ClientConfig.model_validate(json.loads(text))
    except (ValueError, ValidationError) as exc:
        raise ClientConfigError(
            f"{path} is not a c2d client config ({exc.__class__.__name__}); run "
            "`c2d login URL TOKEN` to write it again"
        ) from exc


def save_config(path: Path, config: ClientConfig) -> None:
    """Write `config` to `path` atomically with mode 0600 (folder 0700)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".config-", dir=path.parent)  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(config.model_dump_json(indent=2) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    os.chmod(path, 0o600)


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
