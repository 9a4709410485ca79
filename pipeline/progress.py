"""One console line per stage, everything else to a log file: what ``zhufu run`` shows.

:class:`StageProgress` keeps a handle on the console (a duplicate of file descriptor 1 taken
when it is created). While a stage runs, file descriptors 1 and 2 point at the log file, so
whatever the stage writes (TRL's per-step dictionaries, tqdm bars, library warnings, output
of C extensions) lands there; the console gets ``[i/n] name …`` when the stage starts and,
on the same line when the console is a terminal, its time and figures when it ends. A stage
that raises gets a ``failed`` line and the log's last lines on the console, then the error
goes on.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

#: Lines of the log shown on the console when a stage fails.
TAIL_LINES = 30


class StageLine:
    """The figures a stage reports for its progress line (set with :meth:`done`)."""

    def __init__(self) -> None:
        self.figures = ""

    def done(self, figures: str) -> None:
        self.figures = figures


class StageProgress:
    """Numbered stage lines on the console; stage output appended to ``log``."""

    def __init__(self, log: Path, total: int, console: TextIO | None = None) -> None:
        self.log = Path(log)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.log.write_text("", encoding="utf-8")
        self.total = total
        self.count = 0
        self.console = console or os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1,
                                            encoding="utf-8", closefd=True)
        self._tty = self.console.isatty()

    def note(self, text: str) -> None:
        """A line on the console (and in the log)."""
        self.console.write(f"      {text}\n")
        with self.log.open("a", encoding="utf-8") as f:
            f.write(f"zhufu: {text}\n")

    @contextmanager
    def stage(self, name: str, seconds: MutableMapping[str, float]) -> Iterator[StageLine]:
        """Run the body as stage ``name`` (output to the log); its time goes to
        ``seconds[name]``."""
        self.count += 1
        head = f"[{self.count}/{self.total}] {name:<12}"
        if self._tty:
            self.console.write(f"{head} …")
            self.console.flush()
        with self.log.open("a", encoding="utf-8") as f:
            f.write(f"\n=== zhufu run: {name} ===\n")
        line = StageLine()
        started = time.perf_counter()
        try:
            with redirected(self.log):
                yield line
        except BaseException:
            seconds[name] = time.perf_counter() - started
            self._end(f"{head} failed after {seconds[name]:.1f} s; the last lines of "
                      f"{self.log}:")
            tail = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
            self.console.write("\n".join(tail[-TAIL_LINES:]) + "\n")
            raise
        seconds[name] = time.perf_counter() - started
        self._end(f"{head} {seconds[name]:6.1f} s  {line.figures}".rstrip())

    def _end(self, text: str) -> None:
        self.console.write(("\r\033[K" if self._tty else "") + text + "\n")
        self.console.flush()


@contextmanager
def redirected(log: Path) -> Iterator[None]:
    """File descriptors 1 and 2, and ``sys.stdout`` / ``sys.stderr`` (which may not write to
    them, e.g. under pytest), appended to ``log``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    streams = sys.stdout, sys.stderr
    with log.open("a", encoding="utf-8", buffering=1) as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        sys.stdout = sys.stderr = f
        try:
            yield
        finally:
            f.flush()
            sys.stdout, sys.stderr = streams
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
