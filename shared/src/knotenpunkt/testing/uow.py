"""A unit of work without a database, for rule-level tests of use cases in milliseconds.

The real `UnitOfWork` with one difference: published events are only recorded (`published`,
`events`), not written to an outbox. A use case that also reads or writes tables needs the real
one on PostgreSQL (integration tests); `connection` here refuses every statement, so such a
test fails clearly instead of passing by accident.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any

from knotenpunkt.envelope import Envelope
from knotenpunkt.uow import Actor, Cause, UnitOfWork


class _NoDatabase:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"FakeUnitOfWork has no database (connection.{name}); use an integration test")


class FakeUnitOfWork(UnitOfWork):
    """Records published events instead of writing an outbox."""

    def __init__(
        self, source: str = "knotenpunkt/test", cause: Cause | None = None, actor: Actor | None = None
    ) -> None:
        super().__init__(_NoDatabase(), source, cause or Cause(), actor or Actor.unknown())  # type: ignore[arg-type]

    async def _write(self, items: list[tuple[Envelope, str]]) -> None:
        self.published.extend(items)

    def _nested(self) -> AbstractAsyncContextManager[Any]:
        return nullcontext()
