"""What the client raises. Every answer of the ledger that is not a success is a problem document (RFC 9457);
`ProblemError` carries it, and its subclasses say which kind of answer it was."""

from __future__ import annotations

from typing import Any


class XueshiError(Exception):
    """Anything the client raises."""


class TransportError(XueshiError):
    """The ledger could not be reached, or did not answer in time, however often the client tried. Pushing again
    later is safe: a record the ledger did write answers its first result."""


class ProblemError(XueshiError):
    """The ledger answered with a problem: `status`, `rule` (the last part of `type`), `detail`, `field`, and the
    whole document in `problem`."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        self.type = str(problem.get("type", "about:blank"))
        self.rule = self.type.rsplit("/", 1)[-1]
        self.title = str(problem.get("title", ""))
        self.detail = str(problem.get("detail", ""))
        self.field: str | None = problem.get("field")
        self.errors: list[dict[str, Any]] = list(problem.get("errors") or [])
        super().__init__(f"{status} {self.rule}: {self.detail}")


class InvalidRequest(ProblemError):
    """400 or 422: the record breaks a rule (`rule`, `field`); sending it again changes nothing."""


class Unauthorized(ProblemError):
    """401: the key is unknown, revoked or missing."""


class Forbidden(ProblemError):
    """403: the key may not do this (a staff key pushing, a suspended base)."""


class NotFound(ProblemError):
    """404."""


class ConflictError(ProblemError):
    """409: `external-id-reused` (the same external id with another body) or `name-mismatch`."""


class TooLarge(ProblemError):
    """413: the body (a roster file) is larger than the ledger accepts."""


class RateLimited(ProblemError):
    """429 after the client's retries: the key's limit is used up for now (`retry_after` seconds)."""

    def __init__(self, status: int, problem: dict[str, Any], retry_after: float | None = None) -> None:
        super().__init__(status, problem)
        self.retry_after = retry_after


class Unavailable(ProblemError):
    """503 after the client's retries: the ledger is busy or its database is away; nothing was written."""

    def __init__(self, status: int, problem: dict[str, Any], retry_after: float | None = None) -> None:
        super().__init__(status, problem)
        self.retry_after = retry_after


class ServerError(ProblemError):
    """500 or another unexpected status."""


def problem_error(status: int, problem: dict[str, Any], retry_after: float | None = None) -> ProblemError:
    if status == 429:
        return RateLimited(status, problem, retry_after)
    if status == 503:
        return Unavailable(status, problem, retry_after)
    kind = {400: InvalidRequest, 422: InvalidRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound,
            409: ConflictError, 413: TooLarge}.get(status, ServerError)
    return kind(status, problem)
