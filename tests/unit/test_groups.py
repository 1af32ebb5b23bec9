"""Group columns: declared in the schema, read beside the features, drawn by the generator, reported on."""

from __future__ import annotations

import copy
import tomllib
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ccml.core.errors import SchemaError
from ccml.core.schema import FeatureSchema
from ccml.models.training.fairness import FairnessPlan
from ccml.models.training.fitting import EvaluationPlan, train_and_evaluate
from ccml.models.training.groups import MISSING_GROUP
from ccml.models.training.synthetic import generate
from ccml.models.training.trainers import RandomForestTrainer
from ccml.models.training.validation import validate
from tests.helpers import FAST_PARAMS, dataset_from_frame


def _builtin() -> dict[str, Any]:
    text = resources.files("ccml.builtin_schemas").joinpath("engagement.toml").read_text("utf-8")
    return tomllib.loads(text)


def _without_groups(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key != "groups"}


def test_a_schema_without_groups_dumps_and_fingerprints_as_before_groups_existed() -> None:
    plain = FeatureSchema.from_dict(_without_groups(_builtin()))
    explicit = FeatureSchema.from_dict({**_without_groups(_builtin()), "groups": []})
    assert "groups" not in plain.model_dump(mode="json")
    assert explicit.fingerprint() == plain.fingerprint()
    assert FeatureSchema.from_dict(_builtin()).fingerprint() != plain.fingerprint()


def test_the_builtin_groups_are_reported_on_not_model_inputs(schema: FeatureSchema) -> None:
    assert [g.name for g in schema.groups] == ["gender", "age_band", "disability", "imd_band"]
    feature_columns = {f.column for f in schema.features}
    assert not any(g.feature or g.column in feature_columns for g in schema.groups)
    assert not set(schema.example_record()) & {g.name for g in schema.groups}


def test_a_group_reading_a_feature_column_must_say_feature_true() -> None:
    data = _builtin()
    data["groups"] = [{"name": "device", "column": "DeviceType"}]
    with pytest.raises(SchemaError, match="source columns must be unique"):
        FeatureSchema.from_dict(copy.deepcopy(data))
    data["groups"][0]["feature"] = True
    assert FeatureSchema.from_dict(data).groups[0].feature


def test_feature_true_needs_a_feature_reading_the_column() -> None:
    data = _builtin()
    data["groups"] = [{"name": "gender", "column": "Gender", "feature": True}]
    with pytest.raises(SchemaError, match="feature = true needs a \\[\\[features\\]\\] entry reading column 'Gender'"):
        FeatureSchema.from_dict(data)


def test_validation_carries_groups_beside_the_features_with_bad_cells_missing(
    sample_frame: pd.DataFrame, schema: FeatureSchema
) -> None:
    frame = sample_frame.copy()
    frame.loc[0, "Gender"] = "X"  # not a category
    frame.loc[1, "Gender"] = "  "
    frame.loc[2, "Gender"] = " F "
    table = validate(dataset_from_frame(frame), schema)
    assert table.groups is not None
    assert list(table.groups.columns) == ["gender", "age_band", "disability", "imd_band"]
    assert list(table.features.columns) == schema.feature_names
    assert list(table.groups["gender"][:3]) == [MISSING_GROUP, MISSING_GROUP, "F"]
    assert len(table.groups) == table.rows
    assert table.columns_ignored == ()
    assert table.groups_absent == ()


def test_a_file_without_the_group_columns_trains_and_says_fairness_was_skipped(
    sample_frame: pd.DataFrame, schema: FeatureSchema
) -> None:
    frame = sample_frame.drop(columns=["Disability", "IMDBand"])
    table = validate(dataset_from_frame(frame), schema)
    assert table.groups is not None
    assert list(table.groups.columns) == ["gender", "age_band"]
    plan = EvaluationPlan(fairness=FairnessPlan(permutations=20))
    result = train_and_evaluate(RandomForestTrainer(FAST_PARAMS["random_forest"]), table, plan)
    report = result.artifact.manifest.evaluation.fairness
    assert report is not None
    assert [c.name for c in report.columns] == ["gender", "age_band"]
    assert report.notes == [
        f"{name}: column {column!r} is not in the training file: not reported"
        for name, column in (("disability", "Disability"), ("imd_band", "IMDBand"))
    ]
    assert result.holdout_groups is not None
    assert len(result.holdout_groups) == len(result.holdout_target)


def test_groups_leave_the_generated_features_unchanged(schema: FeatureSchema) -> None:
    plain = schema.model_copy(update={"groups": []})
    with_groups, without = generate(schema, 500, seed=3), generate(plain, 500, seed=3)
    columns = [*schema.id_columns, *(f.column for f in schema.features)]
    pd.testing.assert_frame_equal(with_groups[columns], without[columns])
    assert set(with_groups.columns) - set(without.columns) == {"Gender", "AgeBand", "Disability", "IMDBand"}


def test_the_generator_builds_in_the_documented_disparity(schema: FeatureSchema) -> None:
    frame = generate(schema, 20_000, seed=1)
    completed = frame[schema.target.column] == 1
    deprived = frame["IMDBand"] == "0-20%"
    assert completed[deprived].mean() < completed[~deprived & frame["IMDBand"].notna()].mean() - 0.05
    shares = frame["Disability"].value_counts(normalize=True)
    assert shares["Y"] == pytest.approx(0.10, abs=0.01)


def test_training_on_the_sample_flags_the_known_disparities(schema: FeatureSchema) -> None:
    # 20,000 rows: a 4,000-row holdout, where these mild disparities are found whatever the seed.
    table = validate(dataset_from_frame(generate(schema, 20_000, seed=3)), schema)
    result = train_and_evaluate(RandomForestTrainer({"n_estimators": 30, "n_jobs": 1}), table, EvaluationPlan())
    report = result.artifact.manifest.evaluation.fairness
    assert report is not None
    flagged = {(c.name, g.value) for c in report.columns for g in c.groups if g.flagged}
    assert {("disability", "Y"), ("imd_band", "0-20%")} <= flagged
    assert not {name for name, _ in flagged} & {"gender", "age_band"}  # drawn independently of completion
    imd = {g.value: g for g in report.columns[3].groups}
    assert imd["0-20%"].calibration_gap > 0.05  # the model over-predicts completion for the shifted band
    assert all(np.isfinite(g.calibration_gap) for c in report.columns for g in c.groups)


def test_a_feature_true_group_is_both_a_model_input_and_reported_on(
    sample_frame: pd.DataFrame, schema: FeatureSchema
) -> None:
    data = _builtin()
    data["groups"] = [{"name": "device", "column": "DeviceType", "categories": [0, 1], "feature": True}]
    device = FeatureSchema.from_dict(data)
    table = validate(dataset_from_frame(sample_frame), device)
    assert "device_type" in table.features.columns
    assert table.groups is not None
    plan = EvaluationPlan(fairness=FairnessPlan(permutations=20))
    report = train_and_evaluate(RandomForestTrainer(FAST_PARAMS["random_forest"]), table, plan).artifact.manifest
    fairness = report.evaluation.fairness
    assert fairness is not None
    values = [g.value for g in fairness.columns[0].groups]
    assert values[:2] == ["0", "1"]
    assert set(values) <= {"0", "1", MISSING_GROUP}
