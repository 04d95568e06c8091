"""xueshi-client: the Xueshi hours ledger from Python, for training bases and LMSs (sync and async)."""

from ._core import MAX_BATCH, NO_RETRIES, RetryPolicy
from .client import AsyncClient, Client
from .errors import (
                     ConflictError,
                     Forbidden,
                     InvalidRequest,
                     NotFound,
                     ProblemError,
                     RateLimited,
                     ServerError,
                     TooLarge,
                     TransportError,
                     Unauthorized,
                     Unavailable,
                     XueshiError,
)
from .models import (
                     BatchItem,
                     ExamIn,
                     IdentityChecks,
                     PersonCheckOut,
                     Pushed,
                     RecordIn,
                     RecordResult,
                     RecordView,
                     RosterRowOut,
                     RosterView,
                     SittingIn,
                     Unit,
)

__all__ = [
    "MAX_BATCH", "NO_RETRIES", "AsyncClient", "BatchItem", "Client", "ConflictError", "ExamIn", "Forbidden",
    "IdentityChecks", "InvalidRequest", "NotFound", "PersonCheckOut", "ProblemError", "Pushed", "RateLimited",
    "RecordIn", "RecordResult", "RecordView", "RetryPolicy", "RosterRowOut", "RosterView", "ServerError",
    "SittingIn", "TooLarge", "TransportError", "Unauthorized", "Unavailable", "Unit", "XueshiError",
]
