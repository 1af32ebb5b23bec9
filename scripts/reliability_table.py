"""Turn the reliability suite's JSON-lines figures into the table the README quotes.

Usage: python scripts/reliability_table.py FIGURES.jsonl [--json OUT.json] [--markdown OUT.md]
Rows are grouped by suite: cases run, failures, and (for faults) scenarios survived.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

TITLES = {
    "hostile_artifacts": "Hostile artifacts (local + S3; serve, train, retrain, predict, models show)",
    "api_fuzz": "API fuzzing (schemathesis, all checks, with and without an API key)",
    "data_fuzz": "Data fuzzing (hypothesis CSV files)",
    "faults": "Faults (S3 errors and timeouts, SIGKILL mid-save, full disk, bad manifests and aliases, races)",
    "load_with_faults": "Load with faults (real ccml serve)",
}


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_suite: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_suite[row["suite"]].append(row)
    table = []
    for suite, entries in by_suite.items():
        summary: dict[str, Any] = {
            "suite": suite,
            "title": TITLES.get(suite, suite),
            "cases": sum(int(e["cases"]) for e in entries),
            "failures": sum(int(e["failures"]) for e in entries),
            "runs": len(entries),
        }
        if suite == "faults":
            summary["scenarios_survived"] = sum(1 for e in entries if int(e["failures"]) == 0)
        if suite == "load_with_faults":
            summary["p99_ms"] = max(float(e.get("p99_ms", 0)) for e in entries)
            summary["faults_injected"] = sum(int(e.get("faults_injected", 0)) for e in entries)
        table.append(summary)
    return sorted(table, key=lambda s: list(TITLES).index(s["suite"]) if s["suite"] in TITLES else 99)


def markdown(table: list[dict[str, Any]]) -> str:
    lines = ["| suite | cases run | failures | notes |", "|---|---|---|---|"]
    for row in table:
        notes = []
        if "scenarios_survived" in row:
            notes.append(f"{row['scenarios_survived']} of {row['runs']} scenarios survived")
        if "p99_ms" in row:
            notes.append(f"p99 {row['p99_ms']:.1f} ms, {row['faults_injected']} faults injected")
        lines.append(f"| {row['title']} | {row['cases']:,} | {row['failures']} | {'; '.join(notes)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("figures", type=Path)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    rows = [json.loads(line) for line in args.figures.read_text("utf-8").splitlines() if line.strip()]
    if not rows:
        print(f"{args.figures} holds no figures: did the suite run?", file=sys.stderr)
        return 1
    table = summarise(rows)
    text = markdown(table)
    sys.stdout.write(text)
    if args.json:
        args.json.write_text(json.dumps({"suites": table}, indent=2) + "\n", "utf-8")
    if args.markdown:
        args.markdown.write_text(text, "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
