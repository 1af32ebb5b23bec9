"""Settings: every knob, read once from ``CCML_*`` environment variables (and ``.env``).

Entry points build one ``Settings`` and pass it down; nothing reads the environment at
import time. Component names are checked against their registries here, so a typo fails at
start-up with the list of known names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from ccml.core.errors import ConfigError
from ccml.core.registry import MODEL_STORES, PREDICTORS, TRAINERS, Registry
from ccml.core.schema import FeatureSchema, load_schema

Metric = Literal["roc_auc", "pr_auc", "f1", "precision", "recall", "accuracy", "brier"]
LogFormat = Literal["auto", "json", "console"]


class Settings(BaseSettings):
    """ccml's configuration. Field ``x`` is read from ``CCML_X`` (case-insensitive)."""

    model_config = SettingsConfigDict(
        env_prefix="CCML_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
        populate_by_name=True,
    )

    # Components
    storage: str = Field("local", description="Model store and default data source: local | s3 | a plugin.")
    trainer: str = Field("random_forest", description="random_forest | hist_gradient_boosting | logistic_regression.")
    trainer_params: dict[str, Any] = Field(
        default_factory=dict, description='Estimator hyper-parameters as JSON, e.g. {"n_estimators": 200}.'
    )
    predictor: str = Field("onnx", description="Inference backend: onnx | sklearn | a plugin.")
    onnx_fallback: bool = Field(
        False, description="When a version has no usable ONNX file, serve it with sklearn (logged) instead of refusing."
    )
    schema_file: Path | None = Field(
        None,
        validation_alias="CCML_SCHEMA",
        description="Feature schema TOML; unset = the built-in engagement schema.",
    )

    # Local storage
    home: Path = Field(Path(".ccml"), description="Root of the local model store and data.")

    # S3 storage
    s3_bucket: str | None = Field(None, description="Bucket of the S3 model store and incoming data (CCML_STORAGE=s3).")
    s3_data_prefix: str = Field("incoming/", description="Key prefix where new training CSVs land.")
    s3_model_prefix: str = Field("models/", description="Key prefix of the model store in the bucket.")
    s3_max_data_bytes: Annotated[int, Field(ge=1)] = Field(
        2 * 1024**3, description="Larger training objects are refused (train them as a container task)."
    )

    lambda_min_remaining_s: Annotated[float, Field(ge=0)] = Field(
        120.0, description="The Lambda handler refuses to start training with less time left than this."
    )

    # Training and evaluation
    holdout_fraction: Annotated[float, Field(gt=0, lt=0.9)] = Field(
        0.2, description="Share of rows held out (stratified)."
    )
    cv_folds: Annotated[int, Field(ge=0, le=20)] = Field(0, description="k-fold cross-validation (0 = off, else >= 2).")
    random_state: int = Field(42, description="Seed of splits and estimators: same data, same model.")
    min_rows: Annotated[int, Field(ge=2)] = Field(50, description="Fewer valid rows than this refuse to train.")
    decision_threshold: Annotated[float, Field(gt=0, lt=1)] = Field(
        0.5, description="Probability at or above which the answer is Completed."
    )

    # Promotion gate
    promotion_metric: Metric = Field(
        "roc_auc", description="roc_auc | pr_auc | f1 | precision | recall | accuracy | brier."
    )
    promotion_tolerance: Annotated[float, Field(ge=0)] = Field(
        0.005, description="Promote if challenger >= champion - tolerance (on the challenger's holdout)."
    )
    promotion_floor: float = Field(0.70, description="The first version must reach this score to become champion.")

    # Integrity
    signing_key: SecretStr | None = Field(
        None, description="HMAC key: when set, versions are signed on save and their signature is verified on load."
    )
    allow_unsigned_pickle: bool = Field(
        False,
        description=(
            "Load versions stored as pickles (model.joblib, made before skops) without a valid signature. "
            "Unpickling runs any code in the file: whoever can write to the store can then run code here."
        ),
    )
    max_artifact_bytes: Annotated[int, Field(ge=1024)] = Field(
        512 * 1024**2, description="Largest model file a store read accepts, whatever its manifest says."
    )

    # API
    api_key: SecretStr | None = Field(
        None,
        min_length=1,  # an empty key would lock /predict and leave the other routes open
        description="When set, X-API-Key must carry it on every route but health/docs.",
    )
    reload_interval_s: Annotated[float, Field(gt=0)] = Field(
        10.0, description="How often the API checks the champion alias."
    )
    max_batch: Annotated[int, Field(ge=1)] = Field(
        10_000, description="Most instances one /predict/batch call may carry."
    )
    max_body_bytes: Annotated[int, Field(ge=1024)] | None = Field(
        None,
        description="Larger request bodies get 413. Unset: the size a CCML_MAX_BATCH batch of the schema's "
        "largest records needs (about 5 MiB for the built-in schema and 10000 instances).",
    )
    body_timeout_s: Annotated[float, Field(gt=0)] = Field(
        20.0, description="Longest a client may take to send a request body; a slower or stalled one gets 408."
    )

    # Logging
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="debug | info | warning | error."
    )
    log_format: LogFormat = Field("auto", description="auto (JSON unless stderr is a terminal) | json | console.")

    @field_validator("storage", "trainer", "predictor")
    @classmethod
    def _known_component(cls, value: str, info: ValidationInfo) -> str:
        registries: dict[str, Registry[Any]] = {"storage": MODEL_STORES, "trainer": TRAINERS, "predictor": PREDICTORS}
        return registries[str(info.field_name)].check(value)

    @field_validator("signing_key")
    @classmethod
    def _signing_key(cls, value: SecretStr | None) -> SecretStr | None:
        # An empty key would sign with b"" or, worse, read as "no key" and turn verification off.
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("must not be empty or blank: unset it to run without signatures")
        return value

    @field_validator("cv_folds")
    @classmethod
    def _cv_folds(cls, value: int) -> int:
        if value == 1:
            raise ValueError("cross-validation needs at least 2 folds (0 turns it off)")
        return value

    @model_validator(mode="after")
    def _backend_needs(self) -> Settings:
        if self.storage == "s3" and not self.s3_bucket:
            raise ValueError("CCML_STORAGE=s3 needs CCML_S3_BUCKET")
        if self.s3_model_prefix.strip("/") and self.s3_data_prefix.startswith(self.s3_model_prefix):
            raise ValueError("CCML_S3_DATA_PREFIX must not lie under CCML_S3_MODEL_PREFIX (retraining would loop)")
        return self

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Build settings from the environment, turning validation errors into ``ConfigError``."""
        try:
            return cls(**overrides)
        except ValidationError as exc:
            problems = "; ".join(f"CCML_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
            raise ConfigError(f"invalid settings: {problems}") from exc
        except SettingsError as exc:  # a complex value (e.g. CCML_TRAINER_PARAMS) that is not JSON
            raise ConfigError(f"invalid settings: {exc}; complex values must be valid JSON") from exc

    def feature_schema(self) -> FeatureSchema:
        """Load the configured schema file (or the built-in one); ``SchemaError`` if it is invalid."""
        return load_schema(self.schema_file)

    def signing_key_bytes(self) -> bytes | None:
        """The signing key as bytes for HMAC, or None when unset."""
        return self.signing_key.get_secret_value().encode() if self.signing_key else None

    def store_options(self) -> dict[str, Any]:
        """The keyword arguments every ``ModelStore`` takes from settings."""
        return {
            "signing_key": self.signing_key_bytes(),
            "allow_unsigned_pickle": self.allow_unsigned_pickle,
            "max_file_bytes": self.max_artifact_bytes,
        }

    @property
    def models_root(self) -> Path:
        """The local model store's root: ``$CCML_HOME/models``."""
        return self.home / "models"

    def masked(self) -> dict[str, Any]:
        """The effective settings as JSON-ready values, secrets replaced by ``**********``."""
        return self.model_dump(mode="json")
