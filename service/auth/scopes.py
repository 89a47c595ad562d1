"""Token scopes: each one allows everything the ones below it allow."""

from __future__ import annotations

from enum import StrEnum


class Scope(StrEnum):
    read = "read"
    write = "write"
    admin = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def allows(self, required: Scope) -> bool:
        return self.rank >= required.rank


_RANK = {Scope.read: 0, Scope.write: 1, Scope.admin: 2}
