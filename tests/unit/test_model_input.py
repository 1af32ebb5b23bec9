"""``InputPlan``: the fitted feature step as data. Its batch and one-row forms must agree with
each other and with scikit-learn's transform for any record, including missing values and
unseen categories; pipelines of any other shape get no plan."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler

from ccml.core.model_files import ONNX_FILE
from ccml.core.schema import load_schema
from ccml.core.types import TrainingResult, ValidatedTable
from ccml.models.serving.encoding import RecordEncoder
from ccml.models.serving.input_plan import FEW_ROWS, InputPlan
from ccml.models.serving.onnx import OnnxPredictor
from ccml.models.training.export import export_onnx, plan_from_pipeline
from ccml.models.training.features import build_feature_pipeline
from ccml.models.training.trainers import LogisticRegressionTrainer
from tests.helpers import fit
from tests.strategies import records

SCHEMA = load_schema()
ENCODER = RecordEncoder(SCHEMA)


@pytest.fixture(scope="module")
def scaled(table: ValidatedTable) -> TrainingResult:
    """A pipeline with the StandardScaler step (logistic regression's)."""
    return fit(LogisticRegressionTrainer(), table)


def _plan(result: TrainingResult) -> InputPlan:
    plan = plan_from_pipeline(result.artifact.pipeline)
    assert plan is not None
    return plan


@pytest.mark.parametrize("fixture", ["training", "scaled"])
def test_the_plan_has_the_feature_step_width(fixture: str, request: pytest.FixtureRequest) -> None:
    result: TrainingResult = request.getfixturevalue(fixture)
    plan = _plan(result)
    encoded = ENCODER.encode([SCHEMA.example_record()])

    assert plan.width == result.artifact.pipeline[1].transform(encoded).shape[1]
    assert InputPlan.from_json(plan.to_json()) == plan


@settings(max_examples=150, deadline=None)
@given(record=records(SCHEMA, missing=True, unseen=True))
@pytest.mark.parametrize("fixture", ["training", "scaled"])
def test_one_row_equals_batch_equals_scikit_learn(
    fixture: str, request: pytest.FixtureRequest, record: dict[str, Any]
) -> None:
    result: TrainingResult = request.getfixturevalue(fixture)
    plan = _plan(result)
    encoded = ENCODER.encode([record])

    expected = result.artifact.pipeline[1].transform(encoded)[0]

    np.testing.assert_allclose(plan.row(ENCODER.row(record)), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(plan.transform(encoded)[0], expected, rtol=0, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(rows=st.lists(records(SCHEMA, missing=True, unseen=True), min_size=FEW_ROWS + 1, max_size=60))
def test_vectorised_batches_equal_scikit_learn(training: TrainingResult, rows: list[dict[str, Any]]) -> None:
    plan = _plan(training)
    encoded = ENCODER.encode(rows)

    np.testing.assert_allclose(plan.transform(encoded), training.artifact.pipeline[1].transform(encoded), atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(records(SCHEMA, missing=True, unseen=True), min_size=1, max_size=40))
def test_records_encode_column_by_column_as_row_by_row_and_as_a_frame(rows: list[dict[str, Any]]) -> None:
    encoded = ENCODER.encode(rows)

    np.testing.assert_array_equal(encoded, np.array([ENCODER.row(row) for row in rows], dtype=np.float64))
    frame = pd.DataFrame(rows, columns=[feature.name for feature in SCHEMA.features])
    np.testing.assert_array_equal(encoded, ENCODER.encode(frame.astype(object).where(frame.notna(), None)))


def test_a_frame_of_real_rows_matches(training: TrainingResult, table: ValidatedTable) -> None:
    plan = _plan(training)
    encoded = ENCODER.encode(table.features)

    np.testing.assert_allclose(plan.transform(encoded), training.artifact.pipeline[1].transform(encoded), atol=1e-12)


@settings(max_examples=100, deadline=None)
@given(record=records(SCHEMA, missing=True, unseen=True))
def test_onnx_predict_one_equals_predict_proba(training: TrainingResult, record: dict[str, Any]) -> None:
    predictor = OnnxPredictor(training.artifact)

    assert predictor.predict_one(record) == pytest.approx(float(predictor.predict_proba([record])[0]), abs=1e-7)


def _custom_pipeline(table: ValidatedTable) -> Pipeline:
    """A plugin-style pipeline whose feature step is not the shape build_feature_pipeline makes."""
    from sklearn.ensemble import RandomForestClassifier

    pipeline = build_feature_pipeline(table.schema, RandomForestClassifier(n_estimators=5, random_state=0))
    numeric = [j for j, f in enumerate(table.schema.features) if f.is_numeric]
    steps = Pipeline([("impute", SimpleImputer(strategy="median")), ("minmax", MinMaxScaler())])
    pipeline.steps[1] = ("features", ColumnTransformer([("numeric", steps, numeric)]))
    return pipeline.fit(table.features, table.target)


def test_other_pipeline_shapes_get_no_plan_and_export_as_a_whole_graph(table: ValidatedTable) -> None:
    pipeline = _custom_pipeline(table)
    holdout = pipeline[0].transform(table.features.head(200))

    graph, note = export_onnx(pipeline, holdout, pipeline[1:].predict_proba(holdout))

    assert plan_from_pipeline(pipeline) is None
    assert plan_from_pipeline(pipeline[1:]) is None
    assert graph is not None, note
    assert note.startswith("converted (whole graph)")


def test_a_whole_graph_version_is_served_with_the_same_answers(table: ValidatedTable, training: TrainingResult) -> None:
    pipeline = _custom_pipeline(table)
    holdout = pipeline[0].transform(table.features.head(200))
    graph, note = export_onnx(pipeline, holdout, pipeline[1:].predict_proba(holdout))
    assert graph is not None, note
    artifact = training.artifact.__class__.from_pipeline(pipeline, training.artifact.manifest, {ONNX_FILE: graph})
    predictor = OnnxPredictor(artifact)
    frame = pd.DataFrame(table.features.head(50))

    expected = pipeline.predict_proba(frame)[:, 1]

    np.testing.assert_allclose(predictor.predict_proba(frame), expected, atol=1e-5)
    rows = frame.to_dict(orient="records")
    np.testing.assert_allclose([predictor.predict_one(r) for r in rows], expected, atol=1e-5)


def test_the_default_export_ships_the_estimator_with_a_plan(training: TrainingResult) -> None:
    assert training.artifact.manifest.notes["onnx"].startswith("converted (estimator + input plan)")
    assert OnnxPredictor(training.artifact)._plan == _plan(training)
