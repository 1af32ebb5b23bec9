"""Properties of the schema-built feature pipeline, fitted once for the whole module."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccml.core.errors import DataValidationError
from ccml.core.schema import FeatureSchema, load_schema
from ccml.core.types import TrainingResult
from ccml.models.serving.sklearn import SklearnPredictor
from ccml.models.training.validation import validate
from ccml.storage.local import LocalModelStore
from tests import strategies
from tests.helpers import dataset_from_frame, labelled_source, text_dataset
from tests.strategies import frames, invalid_column_cell, records

# Strategies are built at collection time, so the schema is loaded here rather than by a fixture.
SCHEMA = load_schema()


@pytest.fixture(scope="module")
def predictor(training: TrainingResult) -> SklearnPredictor:
    return SklearnPredictor(training.artifact)


@pytest.fixture(scope="module")
def reloaded(training: TrainingResult, tmp_path_factory: pytest.TempPathFactory) -> SklearnPredictor:
    """The same model after a round trip through a local store (a fresh unpickle)."""
    store = LocalModelStore(tmp_path_factory.mktemp("property-store"))
    version = store.save(training.artifact)
    return SklearnPredictor(store.load(version.id))


@pytest.fixture(scope="module")
def text_table(sample_frame: pd.DataFrame) -> pd.DataFrame:
    """200 valid rows as the CSV reader returns them: every cell text, missing cells NaN."""
    return dataset_from_frame(sample_frame.head(200)).frame


def _width(schema: FeatureSchema) -> int:
    return sum(len(f.category_list) if f.type == "categorical" else 1 for f in schema.features)


def _as_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {k: (None if v is None or (isinstance(v, float) and np.isnan(v)) else v) for k, v in row.items()}
        for row in frame.to_dict(orient="records")
    ]


@given(frame=frames(SCHEMA))
def test_row_count_is_preserved(predictor: SklearnPredictor, training: TrainingResult, frame: pd.DataFrame) -> None:
    assert training.artifact.pipeline[:-1].transform(frame).shape[0] == len(frame)
    assert predictor.predict_proba(frame).shape == (len(frame),)
    assert len(predictor.predict(frame)) == len(frame)


@given(frame=frames(SCHEMA))
def test_output_width_is_fixed_and_has_no_nan(training: TrainingResult, frame: pd.DataFrame) -> None:
    out = training.artifact.pipeline[:-1].transform(frame)
    assert out.shape[1] == _width(SCHEMA)
    assert not np.isnan(out).any()


@given(frame=frames(SCHEMA))
def test_probabilities_are_in_unit_interval_and_sum_to_one(
    predictor: SklearnPredictor, training: TrainingResult, frame: pd.DataFrame
) -> None:
    probabilities = predictor.predict_proba(frame)
    assert np.all((probabilities >= 0) & (probabilities <= 1))
    both = training.artifact.pipeline.predict_proba(frame)
    np.testing.assert_allclose(both.sum(axis=1), 1.0)


@given(frame=frames(SCHEMA))
def test_records_and_frames_give_identical_probabilities(predictor: SklearnPredictor, frame: pd.DataFrame) -> None:
    np.testing.assert_array_equal(predictor.predict_proba(frame), predictor.predict_proba(_as_records(frame)))


@given(record=records(SCHEMA), data=st.data())
def test_unseen_category_encodes_like_no_category_at_all(
    training: TrainingResult, record: dict[str, Any], data: st.DataObject
) -> None:
    feature = data.draw(st.sampled_from([f for f in SCHEMA.features if f.type == "categorical"]))
    unseen = {**record, feature.name: data.draw(strategies.unseen_category(feature))}
    out = training.artifact.pipeline[:-1].transform([unseen])
    assert out.shape == (1, _width(SCHEMA))
    numeric = sum(1 for f in SCHEMA.features if f.is_numeric)
    start = numeric
    for other in SCHEMA.features:
        if other.is_numeric:
            continue
        block = out[0, start : start + len(other.category_list)]
        assert block.sum() == (0 if other.name == feature.name else 1)
        start += len(other.category_list)


@given(record=records(SCHEMA), data=st.data())
def test_missing_value_in_any_feature_still_predicts(
    predictor: SklearnPredictor, record: dict[str, Any], data: st.DataObject
) -> None:
    names = data.draw(st.sets(st.sampled_from(SCHEMA.feature_names), min_size=1))
    holed = {k: (None if k in names else v) for k, v in record.items()}
    probability = predictor.predict_proba([holed])
    assert probability.shape == (1,)
    assert 0 <= probability[0] <= 1


@given(frame=frames(SCHEMA))
def test_save_then_load_gives_identical_predictions(
    predictor: SklearnPredictor, reloaded: SklearnPredictor, frame: pd.DataFrame
) -> None:
    np.testing.assert_array_equal(predictor.predict_proba(frame), reloaded.predict_proba(frame))


@given(bad=invalid_column_cell(SCHEMA), data=st.data())
def test_any_invalid_value_is_reported_under_its_column(
    text_table: pd.DataFrame, bad: tuple[str, str], data: st.DataObject
) -> None:
    column, cell = bad
    row = data.draw(st.integers(0, len(text_table) - 1))
    frame = text_table.copy()
    frame.loc[row, column] = cell
    with pytest.raises(DataValidationError) as caught:
        validate(text_dataset(frame), SCHEMA, min_rows=50)
    issues = [issue for issue in caught.value.issues if issue.column == column]
    assert issues, caught.value.report()
    assert all(issue.column == column for issue in caught.value.issues)
    located = [issue for issue in issues if issue.rows]
    assert all(row + 1 in issue.rows for issue in located)


# Small generated frames are often blank or constant in some column, which validation refuses
# unless the feature is optional (tests/unit/test_uninformative_columns.py covers that refusal).
RELAXED = FeatureSchema.from_dict(
    {
        **SCHEMA.model_dump(mode="json"),
        "features": [{**f, "optional": True} for f in SCHEMA.model_dump(mode="json")["features"]],
    }
)


@given(frame=frames(SCHEMA, min_rows=4, max_rows=30, unseen=False), data=st.data())
def test_valid_rows_with_both_classes_always_validate(frame: pd.DataFrame, data: st.DataObject) -> None:
    n = len(frame)
    positives = data.draw(st.integers(2, n - 2))
    source = labelled_source(SCHEMA, frame, positives)
    table = validate(dataset_from_frame(source), RELAXED, min_rows=4)
    assert table.rows == n
    assert int(table.target.sum()) == positives
