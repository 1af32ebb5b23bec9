from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ccml.core.errors import ConfigError, SchemaError
from ccml.core.registry import DATA_SOURCES, MODEL_STORES, PREDICTORS, TRAINERS
from ccml.core.schema import load_schema
from ccml.core.settings import Settings
from ccml.storage.s3_settings import S3Settings, S3StoreSettings

EXAMPLE_SCHEMA = Path(__file__).resolve().parents[2] / "examples" / "schemas" / "kddcup2015.toml"


def test_defaults_select_local_storage_random_forest_and_onnx() -> None:
    settings = Settings()
    assert settings.storage == "local"
    assert settings.trainer == "random_forest"
    assert settings.predictor == "onnx"
    assert settings.schema_file is None
    assert settings.home == Path(".ccml")


def test_environment_variables_with_ccml_prefix_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CCML_TRAINER", "logistic_regression")
    monkeypatch.setenv("CCML_HOME", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("CCML_TRAINER_PARAMS", '{"C": 0.5}')
    monkeypatch.setenv("CCML_SCHEMA", str(tmp_path / "schema.toml"))
    monkeypatch.setenv("CCML_PROMOTION_TOLERANCE", "0.01")
    settings = Settings()
    assert settings.trainer == "logistic_regression"
    assert settings.home == tmp_path / "elsewhere"
    assert settings.trainer_params == {"C": 0.5}
    assert settings.schema_file == tmp_path / "schema.toml"
    assert settings.promotion_tolerance == 0.01


def test_variables_without_the_prefix_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINER", "logistic_regression")
    assert Settings().trainer == "random_forest"


def test_dotenv_file_in_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("CCML_MIN_ROWS=123\n")
    assert Settings().min_rows == 123


def test_keyword_arguments_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CCML_MIN_ROWS", "500")
    assert Settings(min_rows=7).min_rows == 7


@pytest.mark.parametrize(
    ("field", "registry"),
    [("storage", MODEL_STORES), ("trainer", TRAINERS), ("predictor", PREDICTORS)],
)
def test_unknown_component_name_fails_listing_known_names(field: str, registry: object) -> None:
    with pytest.raises(ConfigError, match="nonexistent") as caught:
        Settings(**{field: "nonexistent"})
    for name in registry.names():  # type: ignore[attr-defined]
        assert name in str(caught.value)


def test_unknown_trainer_in_environment_fails_at_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CCML_TRAINER", "xgboost")
    with pytest.raises(ConfigError, match=r"unknown trainer 'xgboost'; known: .*random_forest"):
        Settings.load()


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"cv_folds": 1}, "CCML_CV_FOLDS"),
        ({"holdout_fraction": 0.95}, "CCML_HOLDOUT_FRACTION"),
        ({"min_rows": 1}, "CCML_MIN_ROWS"),
        ({"promotion_metric": "auc"}, "CCML_PROMOTION_METRIC"),
        ({"decision_threshold": 1.5}, "CCML_DECISION_THRESHOLD"),
    ],
)
def test_invalid_values_raise_config_error_naming_the_variable(overrides: dict[str, object], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        Settings.load(**overrides)


def test_invalid_json_in_trainer_params_raises_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CCML_TRAINER_PARAMS", "{not json")
    with pytest.raises(ConfigError, match="trainer_params"):
        Settings.load()


def test_masked_hides_signing_key_and_api_key() -> None:
    settings = Settings(signing_key="sign-me-secret", api_key="api-key-secret")
    masked = settings.masked()
    assert masked["signing_key"] != "sign-me-secret"
    assert masked["api_key"] != "api-key-secret"
    assert set(masked["signing_key"]) == {"*"}
    text = json.dumps(masked)
    assert "sign-me-secret" not in text
    assert "api-key-secret" not in text
    assert "sign-me-secret" not in repr(settings)


def test_masked_is_json_ready_and_lists_every_field() -> None:
    masked = Settings().masked()
    assert set(masked) == set(Settings.model_fields)
    json.dumps(masked)


def test_signing_key_bytes_are_the_secret_value() -> None:
    assert Settings(signing_key="k3y").signing_key_bytes() == b"k3y"
    assert Settings().signing_key_bytes() is None


def test_models_root_is_under_home(tmp_path: Path) -> None:
    assert Settings(home=tmp_path).models_root.parent == tmp_path


def test_schema_setting_selects_the_schema_file(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().feature_schema() == load_schema()
    monkeypatch.setenv("CCML_SCHEMA", str(EXAMPLE_SCHEMA))
    assert Settings().feature_schema() == load_schema(EXAMPLE_SCHEMA)


def test_schema_setting_naming_a_missing_file_raises_schema_error(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match=r"absent\.toml"):
        Settings(schema_file=tmp_path / "absent.toml").feature_schema()


# -- the S3 backends' settings (declared by their registry entries) ------------------------------
def test_s3_storage_needs_a_bucket_from_keywords_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"^CCML_STORAGE=s3 needs CCML_S3_BUCKET$"):
        Settings(storage="s3")
    monkeypatch.setenv("CCML_STORAGE", "s3")
    with pytest.raises(ConfigError, match=r"^CCML_STORAGE=s3 needs CCML_S3_BUCKET$"):
        Settings.load()
    monkeypatch.setenv("CCML_S3_BUCKET", "from-env")
    assert Settings.load().backend(MODEL_STORES, "s3", S3StoreSettings).bucket == "from-env"
    assert Settings.load(s3_bucket="kw").backend(MODEL_STORES, "s3", S3StoreSettings).bucket == "kw"


def test_s3_variables_keep_their_names_and_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CCML_S3_DATA_PREFIX", "new/")
    monkeypatch.setenv("CCML_S3_MAX_DATA_BYTES", "1000")
    s3 = Settings(storage="s3", s3_bucket="b", s3_model_prefix="store/").backend(MODEL_STORES, "s3", S3StoreSettings)
    assert (s3.bucket, s3.data_prefix, s3.model_prefix, s3.max_data_bytes) == ("b", "new/", "store/", 1000)
    monkeypatch.delenv("CCML_S3_DATA_PREFIX")
    monkeypatch.delenv("CCML_S3_MAX_DATA_BYTES")
    defaults = Settings().backend(DATA_SOURCES, "s3", S3Settings)
    assert (defaults.bucket, defaults.data_prefix, defaults.model_prefix) == (None, "incoming/", "models/")
    assert defaults.max_data_bytes == 2 * 1024**3


def test_s3_data_prefix_under_the_model_prefix_fails_at_start_up() -> None:
    with pytest.raises(ConfigError, match="CCML_S3_DATA_PREFIX must not lie under CCML_S3_MODEL_PREFIX"):
        Settings.load(storage="s3", s3_bucket="b", s3_data_prefix="models/incoming/")
    # With a local store nothing S3 is read at start-up; the S3 data source says it when built.
    settings = Settings.load(s3_data_prefix="models/incoming/")
    with pytest.raises(ConfigError, match="CCML_S3_DATA_PREFIX must not lie under"):
        settings.backend(DATA_SOURCES, "s3")


def test_invalid_s3_value_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CCML_S3_MAX_DATA_BYTES", "0")
    with pytest.raises(ConfigError, match="CCML_S3_MAX_DATA_BYTES: Input should be greater than or equal to 1"):
        Settings.load(storage="s3", s3_bucket="b")


def test_masked_lists_the_s3_settings_when_s3_is_the_store() -> None:
    masked = Settings(storage="s3", s3_bucket="b").masked()
    assert {k: masked[k] for k in masked if k.startswith("s3_")} == {
        "s3_bucket": "b",
        "s3_data_prefix": "incoming/",
        "s3_model_prefix": "models/",
        "s3_max_data_bytes": 2 * 1024**3,
    }


def test_backend_refuses_a_name_without_settings_or_of_another_class() -> None:
    settings = Settings()
    with pytest.raises(ConfigError, match="model store 'local' declares no settings"):
        settings.backend(MODEL_STORES, "local")
    with pytest.raises(ConfigError, match="has S3Settings settings, not S3StoreSettings"):
        settings.backend(DATA_SOURCES, "s3", S3StoreSettings)


def test_backend_settings_are_read_once() -> None:
    settings = Settings(storage="s3", s3_bucket="b")
    assert settings.backend(MODEL_STORES, "s3") is settings.backend(MODEL_STORES, "s3")
    assert settings.model_copy().backend(MODEL_STORES, "s3").bucket == "b"  # type: ignore[attr-defined]


def test_the_s3_settings_import_no_boto3() -> None:
    code = "import sys, ccml.storage.s3_settings; assert 'boto3' not in sys.modules, 'boto3 imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
