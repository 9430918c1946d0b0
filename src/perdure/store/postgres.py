"""PostgreSQL backend (placeholder until the backend lands)."""

from __future__ import annotations

from ..errors import ConfigError


class PostgresStore:
    def __init__(self, url: str, *, durability: str = "full") -> None:
        raise ConfigError("the PostgreSQL backend is not available yet")
