"""What ``thalo serve`` was told: one frozen value the app and the process read."""

from __future__ import annotations

__all__ = ["ServerConfig"]

from dataclasses import dataclass, field

from thalo.server.auth import Tokens

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Settings of one server process (docs/http.md lists them as ``thalo serve`` options)."""

    store_url: str
    host: str = "127.0.0.1"
    port: int = 4433
    admin_token: str | None = None
    tokens: Tokens = field(default_factory=Tokens)
    max_body: int = MIB
    max_module_size: int = 64 * MIB
    max_inflight: int = 256
    body_timeout: float = 10.0
    shutdown_timeout: float = 30.0
    cors_origins: tuple[str, ...] = ()
    log_format: str = "text"
    runner: bool = True
    group_member: int | None = None
    group_size: int | None = None
    cache_size: int = 10_000
    snapshot_every: int = 100
    module_check_interval: float = 1.0
    stream_poll_interval: float = 0.25
    keepalive_interval: float = 15.0
