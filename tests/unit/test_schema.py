from __future__ import annotations

import copy
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from ccml.core.errors import SchemaError
from ccml.core.schema import FeatureSchema, load_schema

EXAMPLE_SCHEMA = Path(__file__).resolve().parents[2] / "examples" / "schemas" / "kddcup2015.toml"


def _builtin_dict() -> dict[str, Any]:
    text = resources.files("ccml.builtin_schemas").joinpath("engagement.toml").read_text("utf-8")
    return tomllib.loads(text)


def _feature(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in data["features"] if f["name"] == name)


def test_builtin_schema_loads_with_target_and_features() -> None:
    schema = load_schema()
    assert schema.features
    assert schema.target.column not in [f.column for f in schema.features]
    assert schema.columns == [f.column for f in schema.features] + [schema.target.column]


def test_every_numeric_feature_of_shipped_schemas_declares_a_range() -> None:
    for schema in (load_schema(), load_schema(EXAMPLE_SCHEMA)):
        for feature in schema.features:
            if feature.type in ("numeric", "integer"):
                low, high = feature.bounds
                assert low < high, feature.name


def test_example_schema_marks_label_zero_as_completed() -> None:
    schema = load_schema(EXAMPLE_SCHEMA)
    assert schema.target.completed_value == 0


def test_load_schema_from_file_equals_builtin(tmp_path: Path) -> None:
    path = tmp_path / "copy.toml"
    path.write_text(resources.files("ccml.builtin_schemas").joinpath("engagement.toml").read_text("utf-8"))
    assert load_schema(path) == load_schema()
    assert load_schema(path).fingerprint() == load_schema().fingerprint()


def test_missing_schema_file_raises_schema_error(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="cannot read schema file"):
        load_schema(tmp_path / "absent.toml")


def test_bad_toml_raises_schema_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('name = "x"\n[target\ncolumn = "y"\n')
    with pytest.raises(SchemaError, match="not valid TOML") as caught:
        load_schema(path)
    assert str(path) in str(caught.value)


def test_numeric_feature_without_range_is_rejected() -> None:
    data = _builtin_dict()
    del _feature(data, "quiz_scores")["max"]
    with pytest.raises(SchemaError, match=r"quiz_scores.*must declare min and max"):
        FeatureSchema.from_dict(data)


def test_integer_feature_with_inverted_range_is_rejected() -> None:
    data = _builtin_dict()
    feature = _feature(data, "number_of_videos_watched")
    feature["min"], feature["max"] = feature["max"], feature["min"]
    with pytest.raises(SchemaError, match="min must be below max"):
        FeatureSchema.from_dict(data)


def test_duplicate_feature_names_are_rejected() -> None:
    data = _builtin_dict()
    duplicate = copy.deepcopy(data["features"][0])
    duplicate["column"] = "SomewhereElse"
    data["features"].append(duplicate)
    with pytest.raises(SchemaError, match="feature names must be unique") as caught:
        FeatureSchema.from_dict(data)
    assert duplicate["name"] in str(caught.value)


def test_duplicate_source_columns_are_rejected() -> None:
    data = _builtin_dict()
    data["features"][1]["column"] = data["target"]["column"]
    with pytest.raises(SchemaError, match="source columns must be unique"):
        FeatureSchema.from_dict(data)


def test_categorical_feature_without_categories_is_rejected() -> None:
    data = _builtin_dict()
    del _feature(data, "course_category")["categories"]
    with pytest.raises(SchemaError, match="must list its categories"):
        FeatureSchema.from_dict(data)


def test_repeated_categories_are_rejected() -> None:
    data = _builtin_dict()
    feature = _feature(data, "course_category")
    feature["categories"] = [*feature["categories"], feature["categories"][0]]
    with pytest.raises(SchemaError, match="categories must be unique"):
        FeatureSchema.from_dict(data)


def test_unknown_feature_type_is_rejected() -> None:
    data = _builtin_dict()
    data["features"][0]["type"] = "text"
    with pytest.raises(SchemaError, match=r"features\[0\] \(course_category\)\.type"):
        FeatureSchema.from_dict(data)


def test_unknown_key_is_rejected() -> None:
    data = _builtin_dict()
    data["features"][0]["colour"] = "red"
    with pytest.raises(SchemaError, match="colour"):
        FeatureSchema.from_dict(data)


def test_boolean_feature_with_range_is_rejected() -> None:
    data = _builtin_dict()
    data["features"].append({"name": "flag", "column": "Flag", "type": "boolean", "min": 0, "max": 1})
    with pytest.raises(SchemaError, match="boolean feature takes no range"):
        FeatureSchema.from_dict(data)


def test_schema_without_features_is_rejected() -> None:
    data = _builtin_dict()
    data["features"] = []
    with pytest.raises(SchemaError, match="features"):
        FeatureSchema.from_dict(data)


def test_example_record_holds_a_valid_value_for_every_feature() -> None:
    schema = load_schema()
    record = schema.example_record()
    assert list(record) == schema.feature_names
    for feature in schema.features:
        value = record[feature.name]
        if feature.type == "categorical":
            assert value in feature.category_list
        else:
            low, high = feature.bounds
            assert low <= float(value) <= high


def test_fingerprint_changes_when_a_feature_changes() -> None:
    data = _builtin_dict()
    before = FeatureSchema.from_dict(data).fingerprint()
    _feature(data, "quiz_scores")["max"] = 1000
    assert FeatureSchema.from_dict(data).fingerprint() != before


# The keys of a feature in every manifest stored before ``optional`` existed: the dump of a
# schema that does not use it must keep exactly these, or stored models stop matching it.
FEATURE_KEYS_BEFORE_OPTIONAL = {
    "name",
    "column",
    "type",
    "description",
    "unit",
    "min",
    "max",
    "categories",
    "labels",
    "example",
    "synthetic",
}


def test_dump_of_shipped_schemas_has_no_optional_key() -> None:
    for schema in (load_schema(), load_schema(EXAMPLE_SCHEMA)):
        for feature in schema.model_dump(mode="json")["features"]:
            assert set(feature) == FEATURE_KEYS_BEFORE_OPTIONAL


def test_optional_false_written_out_changes_neither_dump_nor_fingerprint() -> None:
    data = _builtin_dict()
    plain = FeatureSchema.from_dict(copy.deepcopy(data))
    for feature in data["features"]:
        feature["optional"] = False
    explicit = FeatureSchema.from_dict(data)
    assert explicit.model_dump(mode="json") == plain.model_dump(mode="json")
    assert explicit.fingerprint() == plain.fingerprint()


def test_optional_feature_is_kept_in_the_dump_and_round_trips() -> None:
    data = _builtin_dict()
    _feature(data, "quiz_scores")["optional"] = True
    schema = FeatureSchema.from_dict(data)
    assert schema.feature("quiz_scores").optional
    assert not schema.feature("completion_rate").optional
    dumped = schema.model_dump(mode="json")
    assert _feature(dumped, "quiz_scores")["optional"] is True
    assert FeatureSchema.from_dict(dumped) == schema
    assert schema.fingerprint() != load_schema().fingerprint()


def test_optional_in_toml_is_read() -> None:
    text = resources.files("ccml.builtin_schemas").joinpath("engagement.toml").read_text("utf-8")
    text = text.replace('name = "quiz_scores"\n', 'name = "quiz_scores"\noptional = true\n')
    assert FeatureSchema.from_toml(text).feature("quiz_scores").optional


def test_non_boolean_optional_is_rejected() -> None:
    data = _builtin_dict()
    _feature(data, "quiz_scores")["optional"] = "sometimes"
    with pytest.raises(SchemaError, match=r"features\[4\] \(quiz_scores\)\.optional"):
        FeatureSchema.from_dict(data)
