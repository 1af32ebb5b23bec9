"""Schema types and messages real data needed: ordinal features, a list of completed values,
errors that name the feature, a completed value that matches nothing, ignored columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ccml.core.errors import DataValidationError, SchemaError
from ccml.core.schema import FeatureSchema
from ccml.core.settings import Settings
from ccml.models.serving.encoding import RecordEncoder
from ccml.models.training.trainers import RandomForestTrainer
from ccml.models.training.validation import validate
from tests.helpers import dataset_from_frame, fit

STUDENTS = """
name = "students"
id_columns = ["id"]
[target]
column = "final_result"
completed_value = ["Pass", "Distinction", "Fail"]
[[features]]
name = "age_band"
column = "age_band"
type = "ordinal"
categories = ["0-35", "35-55", "55<="]
[[features]]
name = "clicks"
column = "clicks"
type = "integer"
min = 0
max = 1000
"""
RESULTS = ["Pass", "Distinction", "Fail", "Withdrawn"]


@pytest.fixture
def students() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 600
    band = rng.integers(0, 3, n)
    clicks = rng.integers(0, 1000, n)
    # Older and busier students finish more often: the ordinal carries signal as a number.
    finished = rng.random(n) < 0.05 + 0.4 * band + 0.1 * clicks / 1000
    result = np.where(finished, rng.choice(RESULTS[:3], n), "Withdrawn")
    return pd.DataFrame(
        {
            "id": range(n),
            "age_band": np.array(["0-35", "35-55", "55<="])[band],
            "clicks": clicks,
            "final_result": result,
        }
    )


def test_ordinal_values_encode_as_their_rank_and_an_unseen_one_as_missing() -> None:
    schema = FeatureSchema.from_toml(STUDENTS)
    rows = RecordEncoder(schema).encode([{"age_band": "55<=", "clicks": 1}, {"age_band": "99+", "clicks": 1}])
    assert rows[0].tolist() == [2.0, 1.0]
    assert np.isnan(rows[1][0])


def test_a_list_of_completed_values_makes_every_other_value_not_completed(students: pd.DataFrame) -> None:
    table = validate(dataset_from_frame(students), FeatureSchema.from_toml(STUDENTS))
    assert table.target.tolist() == (students["final_result"] != "Withdrawn").astype(int).tolist()


def test_an_ordinal_schema_trains_and_its_onnx_export_answers_as_scikit_learn(students: pd.DataFrame) -> None:
    from ccml.core.components import build_predictor

    table = validate(dataset_from_frame(students), FeatureSchema.from_toml(STUDENTS))
    result = fit(RandomForestTrainer(random_state=0), table)
    assert "model.onnx" in result.artifact.files
    served = build_predictor(Settings(predictor="onnx"), result.artifact).predict_proba(result.holdout_features)
    assert np.max(np.abs(served - result.holdout_scores)) < 1e-5
    assert result.artifact.manifest.evaluation.holdout.roc_auc > 0.6


def test_an_ordinal_feature_refuses_a_range() -> None:
    with pytest.raises(SchemaError, match=r"features\[0\] \(age_band\): .*an ordinal feature takes no range"):
        FeatureSchema.from_toml(STUDENTS.replace('type = "ordinal"', 'type = "ordinal"\nmin = 0\nmax = 2'))


def test_a_mixed_list_of_completed_values_is_refused() -> None:
    with pytest.raises(SchemaError, match="all strings or all integers"):
        FeatureSchema.from_toml(STUDENTS.replace('["Pass", "Distinction", "Fail"]', '["Pass", 1]'))


def test_a_structural_error_names_the_feature_and_its_position() -> None:
    with pytest.raises(SchemaError, match=r"features\[1\] \(clicks\)\.column: Field required"):
        FeatureSchema.from_toml(STUDENTS.replace('column = "clicks"\n', ""))


def test_completed_values_matching_no_row_are_named_with_the_values_found(students: pd.DataFrame) -> None:
    schema = FeatureSchema.from_toml(STUDENTS.replace('["Pass", "Distinction", "Fail"]', '["pass"]'))
    with pytest.raises(DataValidationError) as raised:
        validate(dataset_from_frame(students), schema)
    assert (
        "final_result: needs at least 2 rows of each class, found 0 completed and 600 not completed: "
        "completed_value ['pass'] matches no row; values found: 'Distinction', 'Fail', 'Pass', 'Withdrawn'"
        in raised.value.report()
    )


def test_columns_neither_feature_target_nor_id_are_recorded_in_the_manifest(students: pd.DataFrame) -> None:
    students["region"] = "North"
    table = validate(dataset_from_frame(students), FeatureSchema.from_toml(STUDENTS))
    assert table.columns_ignored == ("region",)
    result = fit(RandomForestTrainer(random_state=0), table, serving="sklearn")
    assert result.artifact.manifest.data.columns_ignored == ["region"]
