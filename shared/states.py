"""Result states and result sources: the vocabulary of the results stream."""
from enum import Enum


class State(str, Enum):
    """What a result says happened to a job."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    LOST = "lost"
    REVOKED = "revoked"
    ADOPTED = "adopted"

    @property
    def terminal(self) -> bool:
        """True for the states that end a job (``adopted`` ends it only for the old scheduler)."""
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset({State.SUCCEEDED, State.FAILED, State.LOST, State.REVOKED})
# A job gets at most this many ``pending`` results (its first, then one per change of its pending
# reason): a flapping pod cannot flood its scheduler's stream (the publish script enforces it).
MAX_PENDING_RESULTS = 50


# The kinds of podq process that keep a liveness record in Redis (podq status, podq_live_processes).
PROCESS_ROLES = ("intake", "worker", "watcher")


class Source(str, Enum):
    """Which podq component published a result."""

    INTAKE = "intake"
    WORKER = "worker"
    WATCHER = "watcher"
    BROKER = "broker"


class LedgerState(str, Enum):
    """Where a job stands in the ledger (``podq:job:<job_id>``)."""

    ACCEPTED = "accepted"
    WAITING = "waiting"
    """In its scheduler's waiting line for create capacity (broker/store/waiting.py)."""
    DISPATCHED = "dispatched"
    CREATED = "created"
    TERMINAL = "terminal"
    REVOKED = "revoked"


# A pod may be created only for these; a claim on a job in any other state does nothing.
CREATABLE_STATES = frozenset({LedgerState.ACCEPTED, LedgerState.WAITING, LedgerState.DISPATCHED})
# Jobs still on their way: adoption moves them, revoke ends them.
LIVE_LEDGER_STATES = CREATABLE_STATES | {LedgerState.CREATED}


class ControlOp(str, Enum):
    """Operations a producer may ask for on ``podq:control``."""

    REVOKE = "revoke"
    MARK_DONE = "mark_done"
    DELETE = "delete"
    ADOPT = "adopt"
    # Internal: applies the completion policy once a job's terminal result is durable.
    # Sent by podq's own components (broker.control.operations.completion_request), refused from producers.
    COMPLETE = "complete"
