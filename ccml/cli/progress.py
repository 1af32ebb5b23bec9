"""Output for people on a terminal: a progress display driven by the log events, and summary tables.

The workflow does not know about the display: it logs facts (``stage_started``,
``data_validated``, ``cv_fold_scored``, ...) as it always did, and ``progress_display`` puts a
structlog processor in front of the renderer that turns them into progress bars and drops them.
Warnings and errors are still printed, as one readable line each. With ``--verbose`` the
structured logs are shown as before and there is no display; with ``--json``, or when stdout
is not a terminal, nothing here runs and the output stays machine-readable.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, Final

import structlog
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from ccml.core.logging import configure_logging

STAGES: Final = {
    "load": "reading rows",
    "validate": "validating",
    "train": "fitting",
    "export": "exporting for serving",
    "compare": "comparing with the champion",
    "report": "writing the evaluation report",
    "save": "saving the version",
    "promote": "promoting",
}
_SHOWN_LEVELS: Final = frozenset({"warning", "error", "critical", "exception"})


def for_people(as_json: bool) -> bool:
    """Whether to print for a person: no ``--json`` and stdout is a terminal."""
    return not as_json and sys.stdout.isatty()


class ProgressEvents:
    """A structlog processor: log events become progress tasks; warnings become one line each."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}
        self.counts: dict[str, int] = {}

    def _task(self, key: str, description: str, total: float | None = None) -> TaskID:
        if key not in self.tasks:
            self.tasks[key] = self.progress.add_task(description, total=total, count="")
        return self.tasks[key]

    def _advance(self, key: str, description: str, total: int | None = None) -> None:
        task = self._task(key, description, None if total is None else float(total))
        self.counts[key] = self.counts.get(key, 0) + 1
        count = f"{self.counts[key]}/{total}" if total else str(self.counts[key])
        self.progress.update(task, advance=1, description=description, count=count)
        if total:
            self.progress.update(task, total=float(total))

    def _finish(self, key: str, description: str | None = None) -> None:
        if key in self.tasks:
            task = self.tasks[key]
            self.progress.update(task, total=1, completed=1)
            if description:
                self.progress.update(task, description=description)

    def __call__(self, logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        """Update the display from one event, print it if it is a warning, then drop it."""
        event, fields = str(event_dict.get("event")), event_dict
        if event == "stage_started":
            stage = str(fields.get("stage"))
            self._task(stage, STAGES.get(stage, stage))
        elif event == "stage_finished":
            self._finish(str(fields.get("stage")))
        elif event == "data_loaded":
            self._finish("load", f"read {fields.get('rows', 0):,} rows")
        elif event == "data_validated":
            self._finish(
                "validate",
                f"validated: {fields.get('rows_used', 0):,} rows used, "
                f"{fields.get('duplicates_dropped', 0):,} duplicates dropped",
            )
        elif event == "cv_fold_scored":
            # The folds are fitted first, in the train stage's own line; the final fit follows.
            roc_auc = float(fields.get("roc_auc", 0))
            self._advance("train", f"cross-validation (last fold roc_auc {roc_auc:.4f})", int(fields.get("of", 1)))
        elif event == "model_fitted":
            done = f"fitted {fields.get('trainer')} on {fields.get('rows', 0):,} rows"
            if "train" in self.counts:
                self._task("fit", done)
            self._finish("fit" if "train" in self.counts else "train", done)
        elif event == "tune_candidate_scored":
            self._advance("tune", f"candidates scored (last: {fields.get('trainer')} {fields.get('mean', 0):.4f})")
        elif method in _SHOWN_LEVELS:
            details = " ".join(f"{k}={v}" for k, v in fields.items() if k not in ("event", "timestamp", "level"))
            self.progress.console.print(f"[yellow]{method}[/yellow]: {event} {details}".rstrip(), markup=True)
        raise structlog.DropEvent


@contextmanager
def progress_display(enabled: bool, *, verbose: bool, log_level: str = "info") -> Iterator[None]:
    """Show a progress display on stderr while the block runs, when ``enabled`` and not ``verbose``."""
    if not enabled or verbose or not sys.stderr.isatty():
        yield
        return
    # Info events drive the display even when CCML_LOG_LEVEL would hide them: none is printed.
    configure_logging("debug" if log_level == "debug" else "info", "console")
    columns = (
        SpinnerColumn(finished_text="[green]✓[/green]"),
        TextColumn("{task.description}"),
        BarColumn(bar_width=24),
        TextColumn("{task.fields[count]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as progress:
        processors = list(structlog.get_config()["processors"])
        structlog.configure(processors=[ProgressEvents(progress), *processors])
        try:
            yield
        finally:
            structlog.configure(processors=processors)


def print_table(title: str, rows: list[tuple[str, str]]) -> None:
    """A two-column summary table on stdout."""
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for name, value in rows:
        table.add_row(name, value)
    Console().print(table)
