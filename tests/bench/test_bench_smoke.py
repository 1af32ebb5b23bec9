"""The benchmark suite's quick mode, end to end, as CI's smoke test of ``make bench``.

Runs ``python -m bench.run --quick`` in a fresh process (it starts and stops its own servers
on loopback) and checks that the JSON has every section with numeric figures, every target
stated, and a markdown twin. No timing assertions: the figures depend on the machine.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = ("in_process", "http", "http_batch", "cold_start", "training")
TARGETS = {
    "one_row_onnx_median_us",
    "explained_predict_endpoint_median_us",
    "batch_onnx_rows_per_s",
    "ccml_1w_rps_c1_vs_validating",
    "ccml_1w_rps_c8_vs_validating",
    "ccml_1w_rps_c32_vs_validating",
    "batch_1000_rows_per_s",
    "batch_10000_rows_per_s",
    "ccml_1w_worker_rss_mb",
    "handler_import_and_build_s",
    "ccml_1w_rps_c1_vs_floor",
    "ccml_1w_rps_c8_vs_floor",
    "ccml_1w_rps_c32_vs_floor",
    "ccml_1w_rps_c1_vs_tutorial",
    "ccml_1w_rps_c8_vs_tutorial",
    "ccml_1w_rps_c32_vs_tutorial",
    "ccml_1w_p99_ms_c32",
    "ccml_2w_p50_ms_c1",
    "api_first_prediction_s",
    "sklearn_imported_when_serving_onnx",
    "train_1000000_wall_s",
    "train_1000000_peak_rss_mb",
}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, str]:
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (apt-get install -y wrk)")
    out = tmp_path_factory.mktemp("bench-results")
    # The suite must measure ccml's defaults, not a developer's CCML_* settings.
    env = {name: value for name, value in os.environ.items() if not name.upper().startswith("CCML_")}
    result = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    [json_path] = out.glob("*.json")
    [markdown_path] = out.glob("*.md")
    assert json_path.stem == markdown_path.stem
    return json.loads(json_path.read_text()), markdown_path.read_text(), result.stdout


@pytest.mark.timeout(260)
def test_quick_mode_reports_every_section_with_numeric_figures(quick_run: tuple[dict[str, Any], str, str]) -> None:
    document, _, _ = quick_run
    assert document["mode"] == "quick"
    for section in SECTIONS:
        assert section in document["sections"], section
        assert "error" not in document["sections"][section], document["sections"][section]
        numbers = [f for f in document["figures"] if f["section"] == section and _number(f["value"])]
        assert numbers, f"section {section} has no numeric figure"
        for figure in numbers:
            assert figure["what"], figure
            assert figure["unit"], figure
    model_size = document["sections"]["model_size"]
    assert "skipped" in model_size or any(
        f["section"] == "model_size" and _number(f["value"]) for f in document["figures"]
    )


@pytest.mark.timeout(260)
def test_quick_mode_states_every_target(quick_run: tuple[dict[str, Any], str, str]) -> None:
    document, markdown, _ = quick_run
    targets = {f["key"]: f for f in document["targets"]}
    assert set(targets) >= TARGETS
    for key, figure in targets.items():
        assert figure["met"] in (True, False, None), key
        assert (figure["met"] is None) == (figure["value"] is None), key  # unmeasured only when no value
    assert "| # | section | what was measured | value | unit | compared against | ratio | target | met? |" in markdown
    assert len([line for line in markdown.splitlines() if line.startswith("| ")]) > len(document["figures"])


@pytest.mark.timeout(260)
def test_quick_mode_prints_figures_as_it_measures(quick_run: tuple[dict[str, Any], str, str]) -> None:
    _, _, stdout = quick_run
    for section in SECTIONS:
        assert f"[{section}] " in stdout
