"""The evaluation report made at training time: written for every version the workflow saves,
escaped, with exact permutation importance and the store's horizon models; a report that
cannot be made costs nothing but itself; ``ccml models report`` writes it out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ccml.cli import app
from ccml.core.contracts import FittedModel
from ccml.core.model_files import REPORT_FILE
from ccml.core.settings import Settings
from ccml.core.types import ValidatedTable
from ccml.models.training import report as report_module
from ccml.models.training.report_inputs import ReportInputs, horizon_points, permutation_importance
from ccml.models.training.report_page import render
from ccml.models.training.trainers import LogisticRegressionTrainer
from ccml.models.training.workflow import RetrainWorkflow
from ccml.storage.local import LocalDataSource, LocalModelStore


class OneColumnModel(FittedModel):
    """Scores rows by one column only: every other column's importance is exactly zero."""

    def __init__(self, column: str) -> None:
        self.column = column
        self.params: dict[str, Any] = {}

    def predict_proba(self, features: pd.DataFrame) -> Any:
        return features[self.column].fillna(0).to_numpy(dtype=np.float64)

    def files(self) -> dict[str, bytes]:
        return {}


def _workflow(settings: Settings, store: LocalModelStore) -> RetrainWorkflow:
    return RetrainWorkflow.from_settings(settings, store, LogisticRegressionTrainer())


def test_every_trained_version_carries_its_report(settings: Settings, store: LocalModelStore, sample_csv: Path) -> None:
    outcome = _workflow(settings, store).run(LocalDataSource(sample_csv))
    artifact = store.load(outcome.version)
    page = artifact.files[REPORT_FILE].decode()
    assert artifact.manifest.files[REPORT_FILE].size == len(page.encode())
    assert f"Evaluation report: {outcome.version}" in page  # the id reserved before saving is the id saved
    assert outcome.reason in page or json.dumps(outcome.reason)[1:-1] in page


def test_manifest_text_is_escaped(settings: Settings, store: LocalModelStore, sample_csv: Path) -> None:
    outcome = _workflow(settings, store).run(LocalDataSource(sample_csv))
    artifact = store.load(outcome.version)
    manifest = artifact.manifest.model_copy(update={"notes": {"x": "<script>alert(1)</script>"}})
    page = render(ReportInputs(manifest, np.array([0, 1], dtype=np.int8), np.array([0.2, 0.9])))
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_permutation_importance_is_exact_for_unused_features(table: ValidatedTable) -> None:
    used = next(name for name in table.features.columns if pd.api.types.is_numeric_dtype(table.features[name]))
    found = {i.feature: i for i in permutation_importance(OneColumnModel(used), table.features, table.target)}
    assert set(found) == set(table.features.columns)
    assert found[used].mean > 0
    assert all(found[name].mean == 0 and found[name].std == 0 for name in found if name != used)
    one_class = np.zeros(len(table.target), dtype=np.int8)
    assert permutation_importance(OneColumnModel(used), table.features, one_class) == []


def test_a_report_that_fails_costs_only_itself(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, store: LocalModelStore, sample_csv: Path
) -> None:
    def broken(*_: Any, **__: Any) -> str:
        raise RuntimeError("figure failed")

    monkeypatch.setattr(report_module, "render", broken)
    outcome = _workflow(settings, store).run(LocalDataSource(sample_csv))
    artifact = store.load(outcome.version)
    assert outcome.promoted
    assert REPORT_FILE not in artifact.files
    assert artifact.manifest.notes["report"] == "not written: RuntimeError: figure failed"


def test_horizon_models_of_the_store_are_shown_with_this_one(
    settings: Settings, store: LocalModelStore, sample_csv: Path
) -> None:
    workflow = _workflow(settings, store)
    for day in (7, 21):
        outcome = workflow.run(LocalDataSource(sample_csv))
        store.promote(outcome.version, f"day-{day}")
    manifest = store.manifest(outcome.version)
    points = horizon_points(store, manifest, "day-14")
    assert [p.day for p in points] == [7, 14, 21]
    assert [p.current for p in points] == [False, True, False]
    assert points[2].version == outcome.version
    assert points[0].roc_auc == store.manifest(store.resolve("day-7")).evaluation.holdout.roc_auc
    assert horizon_points(store, manifest, "champion") == []


def test_models_report_writes_the_page_and_refuses_a_version_without_one(
    settings: Settings, sample_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CCML_HOME", str(settings.home))
    store = LocalModelStore(settings.models_root)
    outcome = _workflow(settings, store).run(LocalDataSource(sample_csv))
    expected = store.load(outcome.version).files[REPORT_FILE]
    monkeypatch.setattr(report_module, "render", lambda *_, **__: (_ for _ in ()).throw(RuntimeError("no")))
    older = _workflow(settings, store).run(LocalDataSource(sample_csv), force=True)
    # The CLI runs last: under CliRunner it leaves structlog writing to a stream it closed.
    result = CliRunner().invoke(app, ["models", "report", outcome.version, "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    written = tmp_path / "out" / f"{outcome.version}.html"
    assert result.output.strip().splitlines()[-1] == str(written)
    assert written.read_bytes() == expected
    result = CliRunner().invoke(app, ["models", "report", older.version, "--out", str(tmp_path / "out")])
    assert result.exit_code != 0
    assert "has no evaluation report" in result.output
