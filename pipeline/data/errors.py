"""Errors of the data layer: :class:`DataError` names the file, the 1-based row and the field."""

from __future__ import annotations


class DataError(ValueError):
    """A data file is malformed.

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
