"""One error hierarchy for what a user can fix: bad input and unusable surroundings.

A :class:`ZhufuError` says what is wrong and what to change (a config field, a data row, a
model spec, an unreachable server): the ``zhufu`` command prints its message on one line and
exits with status 2. Any other exception is a bug, in Zhufu or in a library: it keeps its
traceback and the command exits with status 1.

::

    ZhufuError
    ├── ConfigError      a config that does not validate, or options that do not fit together
    ├── DataError        a malformed or empty data file (names file, 1-based row, field)
    ├── TrackingError    the MLflow store cannot be used
    ├── StorageError     a local path or s3:// URI that cannot be read or written
    ├── ModelSpecError   a model, judge or scorer spec that names nothing loadable
    └── LLMError         an LLM call that failed for good (after its retries)

Each class also derives from the built-in error it used to be (``ValueError``, ``OSError``,
``RuntimeError``), so existing ``except`` clauses keep working. Nothing here imports anything.
"""

from __future__ import annotations


class ZhufuError(Exception):
    """Something the user can fix; the message says what (the CLI: one line, exit 2)."""


class ConfigError(ZhufuError, ValueError):
    """A config that does not validate; the message names each bad field and why."""


class DataError(ZhufuError, ValueError):
    """A data file is malformed or holds nothing usable.

    ``file`` is the path or URI, ``row`` the 1-based row (JSON array element, line of a text
    or JSONL file, parquet row) or ``None`` for a file-level problem, ``field`` the offending
    key (``None`` when the whole record or file is at fault) and ``reason`` says what is wrong.
    """

    def __init__(self, file: str, row: int | None, field: str | None, reason: str) -> None:
        self.file = str(file)
        self.row = row
        self.field = field
        self.reason = reason
        where = self.file
        if row is not None:
            where += f": row {row}"
        if field is not None:
            where += f", field '{field}'" if row is not None else f": field '{field}'"
        super().__init__(f"{where}: {reason}")

    def __reduce__(self) -> tuple[type[DataError], tuple[str, int | None, str | None, str]]:
        # Keep the fields through pickling (multiprocessing, dataloader workers).
        return (type(self), (self.file, self.row, self.field, self.reason))


class TrackingError(ZhufuError, RuntimeError):
    """The tracking store cannot be used (unreachable server, bad URI)."""


class StorageError(ZhufuError, OSError):
    """Reading or writing ``uri`` failed; the message says why and names the URI."""

    def __init__(self, uri: str, reason: str) -> None:
        self.uri = uri
        self.reason = reason
        super().__init__(f"{uri}: {reason}")

    def __str__(self) -> str:
        return f"{self.uri}: {self.reason}"

    def __reduce__(self) -> tuple[type[StorageError], tuple[str, str]]:
        return (type(self), (self.uri, self.reason))


class ModelSpecError(ZhufuError, ValueError):
    """A model spec that names nothing loadable; the message says what was tried."""


class LLMError(ZhufuError, RuntimeError):
    """An LLM call that failed for good (after the retries its backend allows).

    ``kind`` names the failure for the counters (``HTTP429``, ``TimeoutError``, ...); when it
    is not given, the class name of the cause (or of the error itself) is used.
    """

    def __init__(self, message: str, kind: str | None = None) -> None:
        super().__init__(message)
        self._kind = kind

    @property
    def kind(self) -> str:
        return self._kind or type(self.__cause__ or self).__name__

    def __reduce__(self) -> tuple[type[LLMError], tuple[str, str | None]]:
        # survives pickling (process pools); subclasses with other signatures come back as LLMError
        cls = type(self) if type(self).__init__ is LLMError.__init__ else LLMError
        return (cls, (str(self), self._kind))
