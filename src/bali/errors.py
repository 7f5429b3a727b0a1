"""Errors the command line turns into exit statuses: bad input is 2, anything else 1."""

from __future__ import annotations

from pathlib import Path


class BaliError(Exception):
    """A failure with a message meant for the user (exit status 1)."""

    exit_code = 1


class BadInputError(BaliError):
    """Input the user can fix: names the file, the line (1-based) when known, and what was expected."""

    exit_code = 2

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None) -> None:
        self.path = None if path is None else str(path)
        self.line = line
        self.detail = message
        where = ""
        if self.path is not None:
            where = self.path if line is None else f"{self.path}:{line}"
            where += ": "
        super().__init__(where + message)


def decode_line(raw: bytes, path: str | Path, number: int) -> str:
    """One line of a UTF-8 file read in binary mode, without its line break.

    Readers decode line by line so that invalid UTF-8 is bad input naming its line, not a
    ``UnicodeDecodeError`` raised somewhere in a read buffer.
    """
    try:
        return raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise BadInputError(f"invalid UTF-8 at byte {exc.start} of the line", path, number) from exc


class ErrorBudget:
    """Counts tolerated malformed records per reason; raises once more than ``max_errors`` are seen.

    Readers call :meth:`record` for every bad line. With the default ``max_errors=0`` the first one
    stops the run with a :class:`BadInputError`; otherwise the counts end up in the manifest, so
    nothing is dropped without being counted.
    """

    def __init__(self, max_errors: int = 0) -> None:
        if max_errors < 0:
            raise BadInputError(f"--max-errors must be >= 0, got {max_errors}")
        self.max_errors = max_errors
        self.counts: dict[str, int] = {}
        self.examples: list[str] = []

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def record(
        self, reason: str, message: str, path: str | Path | None = None, line: int | None = None
    ) -> None:
        """Count one bad record; raise if the budget is exhausted."""
        error = BadInputError(message, path, line)
        if self.total >= self.max_errors:
            if self.max_errors:
                raise BadInputError(
                    f"{message} (more than --max-errors={self.max_errors} bad records)", path, line
                )
            raise error
        self.counts[reason] = self.counts.get(reason, 0) + 1
        if len(self.examples) < 20:
            self.examples.append(str(error))

    def as_dict(self) -> dict[str, object]:
        return {"total": self.total, "by_reason": dict(self.counts), "examples": list(self.examples)}
