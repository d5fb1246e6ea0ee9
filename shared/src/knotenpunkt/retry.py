"""One retry policy and one list of transient errors, for every loop that waits out a failure:
the event consumers, the projection consumer and the outbox relay."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

# Errors that go away by themselves: the database restarting or unreachable, a lost
# connection, a deadlock or serialization failure between concurrent transactions.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    # Admin or crash shutdown, "the database system is starting up": the server comes back.
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.TooManyConnectionsError,
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
)


@dataclass(frozen=True)
class Backoff:
    """Bounded exponential backoff: `initial_s`, doubling up to `max_s` between attempts.

    `max_attempts` bounds how often one event is tried when its own handling keeps failing
    transiently (then it is dead-lettered); None retries for ever (a loop that must never skip,
    such as waiting for the database to come back).
    """

    initial_s: float = 0.5
    max_s: float = 10.0
    max_attempts: int | None = None

    def delay(self, attempt: int) -> float:
        """The pause after the `attempt`-th failed attempt (1-based)."""
        return min(self.initial_s * (2 ** (max(attempt, 1) - 1)), self.max_s)

    def gives_up_after(self, attempt: int) -> bool:
        return self.max_attempts is not None and attempt >= self.max_attempts


# SQLSTATEs of a database that is failing as a whole, not of one event: read-only (a failover in
# progress), insufficient resources (disk full, out of memory), operator intervention, system
# and internal errors. Waiting is right for them; dead-lettering would empty a whole batch into
# the dead-letter topic because of the database.
_DATABASE_FAILING_SQLSTATES = ("25006",)
_DATABASE_FAILING_CLASSES = ("53", "57", "58", "XX")


def database_failing(error: BaseException) -> bool:
    sqlstate = getattr(error, "sqlstate", None)
    if not isinstance(error, asyncpg.PostgresError) or not isinstance(sqlstate, str):
        return False
    return sqlstate in _DATABASE_FAILING_SQLSTATES or sqlstate[:2] in _DATABASE_FAILING_CLASSES


def is_transient(error: BaseException, also: tuple[type[BaseException], ...] = ()) -> bool:
    """Whether waiting and trying again can fix the error."""
    return isinstance(error, TRANSIENT_ERRORS + also) or database_failing(error)
