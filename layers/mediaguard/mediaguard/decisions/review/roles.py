"""Who is asking: a reviewer's subject and roles, and what those roles allow.

How a request becomes a :class:`Caller` (JWT claims, local dev tokens) is HTTP's
business and lives in :mod:`mediaguard.api.auth`.
"""

from __future__ import annotations

from dataclasses import dataclass

from mediaguard.errors import ForbiddenError

# Cumulative: a senior reviewer can do what a reviewer can, an admin what a senior can.
ROLE_LEVELS = {"reviewer": 1, "senior-reviewer": 2, "admin": 3}


@dataclass(frozen=True)
class Caller:
    """An authenticated subject and its roles; the service checks them with :meth:`require`."""

    sub: str
    roles: frozenset[str] = frozenset()
    name: str | None = None  # a display name from the token, when it carries one

    @property
    def level(self) -> int:
        return max((ROLE_LEVELS.get(r, 0) for r in self.roles), default=0)

    def require(self, role: str) -> None:
        if self.level < ROLE_LEVELS[role]:
            raise ForbiddenError(f"this needs the {role} role")

    @property
    def senior(self) -> bool:
        return self.level >= ROLE_LEVELS["senior-reviewer"]

    @property
    def actor(self) -> str:
        return f"reviewer:{self.sub}"
