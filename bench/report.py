"""What a benchmark run knows and what it found: the run's context, and its figures.

Each figure says what was measured, its unit, and (when there is one) what it is compared
against, the ratio, the target and whether the target was met. ``Report.add`` prints the
figure as soon as it is measured; ``write`` renders the JSON and the markdown table.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from ccml.core.jsonable import finite

Mode = Literal["quick", "full"]


@dataclass(frozen=True)
class Plan:
    """How much of each benchmark a mode runs. Every load loop is bounded by these."""

    one_row_calls: int  # per backend, alternating call by call
    batch_rows: int
    batch_reps: int
    wrk_seconds: int  # per cell
    wrk_warmup_seconds: int
    wrk_rounds: int
    connections: tuple[int, ...]
    http_batch_sizes: tuple[int, ...]
    http_batch_reps: int
    cold_start_reps: int
    training_sizes: tuple[int, ...]
    training_timeout_s: float
    model_size: bool

    @staticmethod
    def for_mode(mode: Mode) -> Plan:
        if mode == "full":
            return Plan(
                one_row_calls=2000,
                batch_rows=100_000,
                batch_reps=5,
                wrk_seconds=12,
                wrk_warmup_seconds=2,
                wrk_rounds=2,
                connections=(1, 8, 32),
                http_batch_sizes=(1_000, 10_000),
                http_batch_reps=7,
                cold_start_reps=5,
                training_sizes=(10_000, 100_000, 1_000_000),
                training_timeout_s=3600.0,
                model_size=True,
            )
        # Quick mode is CI's smoke run and must finish in about a minute and a half on two
        # busy cores: a scikit-learn one-row call takes ~10-20 ms, so 2,000 of them alone
        # would take half a minute. Its figures are indicative; full mode gives the numbers.
        return Plan(
            one_row_calls=300,
            batch_rows=100_000,
            batch_reps=2,
            wrk_seconds=2,
            wrk_warmup_seconds=1,
            wrk_rounds=1,
            connections=(1, 8, 32),
            http_batch_sizes=(1_000, 10_000),
            http_batch_reps=3,
            cold_start_reps=1,
            training_sizes=(10_000,),
            training_timeout_s=600.0,
            model_size=False,
        )


@dataclass
class Figure:
    section: str
    key: str
    what: str
    value: float | bool | None
    unit: str
    compared_to: str = ""
    ratio: float | None = None
    target: str = ""
    met: bool | None = None


@dataclass
class Report:
    mode: Mode
    meta: dict[str, Any] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)
    sections: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    tables: list[dict[str, Any]] = field(default_factory=list)  # title, header, rows: details

    def add(
        self,
        section: str,
        key: str,
        what: str,
        value: float | bool | None,
        unit: str,
        *,
        compared_to: str = "",
        ratio: float | None = None,
        target: str = "",
        met: bool | None = None,
    ) -> Figure:
        figure = Figure(section, key, what, value, unit, compared_to, ratio, target, met)
        self.figures.append(figure)
        line = f"[{section}] {what}: {_value(value)} {unit}".rstrip()
        if ratio is not None:
            line += f" ({_ratio(ratio)} {compared_to})"
        if target:
            line += f"  target {target}: {_met(met)}"
        print(line, flush=True)
        return figure

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"note: {text}", flush=True)

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "meta": self.meta,
            "sections": self.sections,
            "figures": [finite(asdict(f)) for f in self.figures],
            "targets": [finite(asdict(f)) for f in self.figures if f.target],
            "notes": self.notes,
        }

    def markdown(self) -> str:
        meta = self.meta
        lines = [
            f"# ccml benchmarks: {self.mode} mode, {meta.get('started_at', '')}",
            "",
            f"Machine: {meta.get('cpu', '?')}, {meta.get('cores', '?')} cores, {meta.get('memory_gb', '?')} GB; "
            f"load average at start {meta.get('load_average_start')}, at end {meta.get('load_average_end')}. "
            f"Python {meta.get('python')}; {_libraries(meta.get('libraries', {}))}. "
            f"Commit {meta.get('commit', '?')}. Whole run: {meta.get('total_seconds', '?')} s.",
            "",
            "| # | section | what was measured | value | unit | compared against | ratio | target | met? |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for number, f in enumerate(self.figures, start=1):
            cells = [
                str(number),
                f.section,
                f.what,
                _value(f.value),
                f.unit,
                f.compared_to or "—",
                _ratio(f.ratio) if f.ratio is not None else "—",
                f.target or "—",
                _met(f.met) if f.target else "—",
            ]
            lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
        targets = [f for f in self.figures if f.target]
        if targets:
            met = sum(1 for f in targets if f.met)
            missed = sum(1 for f in targets if f.met is False)
            lines += ["", f"Targets: {met} met, {missed} missed, {len(targets) - met - missed} not measured."]
        for table in self.tables:
            lines += ["", f"{table['title']}:", ""]
            lines.append("| " + " | ".join(table["header"]) + " |")
            lines.append("|" + "---|" * len(table["header"]))
            lines += ["| " + " | ".join(row) + " |" for row in table["rows"]]
        skipped = {name: s["skipped"] for name, s in self.sections.items() if isinstance(s, dict) and "skipped" in s}
        errors = {name: s["error"] for name, s in self.sections.items() if isinstance(s, dict) and "error" in s}
        if skipped or errors or self.notes:
            lines += ["", "Notes:", ""]
            lines += [f"- section {name} skipped: {why}" for name, why in skipped.items()]
            lines += [f"- section {name} FAILED: {why}" for name, why in errors.items()]
            lines += [f"- {text}" for text in self.notes]
        return "\n".join(lines) + "\n"

    def write(self, folder: Path, stamp: str) -> tuple[Path, Path]:
        folder.mkdir(parents=True, exist_ok=True)
        json_path = folder / f"{stamp}.json"
        markdown_path = folder / f"{stamp}.md"
        json_path.write_text(json.dumps(finite(self.to_json()), indent=2) + "\n")
        markdown_path.write_text(self.markdown())
        return json_path, markdown_path


def _value(value: float | bool | None) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) or abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:,.2f}"
    return f"{value:.3g}"


def _ratio(ratio: float) -> str:
    return "n/a" if not math.isfinite(ratio) else f"{ratio:.2f}x" if ratio < 100 else f"{ratio:,.0f}x"


def _met(met: bool | None) -> str:
    return "not measured" if met is None else "met" if met else "**missed**"


def _libraries(libraries: dict[str, str]) -> str:
    return ", ".join(f"{name} {version}" for name, version in libraries.items())
