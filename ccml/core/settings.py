"""Settings: every knob, read once from ``CCML_*`` environment variables (and ``.env``).

Entry points build one ``Settings`` and pass it down; nothing reads the environment at
import time. Component names are checked against their registries here, so a typo fails at
start-up with the list of known names. A backend's own settings (``CCML_S3_*``) are declared
by its registry entry (see ``ccml.core.backend_settings``) and reached with ``Settings.backend``;
the chosen backends' are read and checked when ``Settings`` is built.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, overload

from pydantic import Field, PrivateAttr, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from ccml.core import backend_settings
from ccml.core.backend_settings import UnknownSettingWarning
from ccml.core.errors import ConfigError
from ccml.core.insight_settings import Calibration as Calibration
from ccml.core.insight_settings import CalibrationChoice as CalibrationChoice
from ccml.core.insight_settings import InsightSettings
from ccml.core.insight_settings import ThresholdPolicy as ThresholdPolicy
from ccml.core.registry import REGISTRIES, Registry
from ccml.core.schema import FeatureSchema, load_schema

M = TypeVar("M", bound=BaseSettings)
# Read by ``ccml serve`` itself (its options' defaults), not by Settings: known, never warned about.
OTHER_VARIABLES = frozenset({"CCML_HOST", "CCML_PORT", "CCML_WORKERS"})

Metric = Literal["roc_auc", "pr_auc", "f1", "precision", "recall", "accuracy", "brier"]
LogFormat = Literal["auto", "json", "console"]


class Settings(InsightSettings):
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
        0.5, description="Probability at or above which the answer is Completed (the fixed threshold policy)."
    )

    # Activity logs
    log_engine: Literal["duckdb", "spark"] = Field(
        "duckdb", description="Engine of the activity-log aggregation: duckdb (embedded) | spark (the spark extra)."
    )
    spark_master: str = Field(
        "local[*]", description="Spark master URL of CCML_LOG_ENGINE=spark: local[*] or a cluster."
    )
    duckdb_memory_limit: str | None = Field(
        "400MB",
        description="DuckDB's memory limit for the log aggregation (it spills to disk past it); unset: 80% of RAM.",
    )
    max_log_bytes: Annotated[int, Field(ge=1)] = Field(
        20 * 1024**3, description="Largest total size of the activity-log files one run reads."
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

    # The backends' settings: keyword overrides for them, and each one once built.
    _backend_values: dict[str, Any] = PrivateAttr(default_factory=dict)
    _backends: dict[tuple[str, str], BaseSettings] = PrivateAttr(default_factory=dict)
    _env_file: Any = PrivateAttr(".env")

    def __init__(self, **values: Any) -> None:
        """Read the settings; keyword arguments override the environment, a backend's too (``s3_bucket="b"``).

        Raises:
            ConfigError: a keyword no setting takes, an unknown component name, or a chosen
                backend's settings are missing or invalid (``CCML_STORAGE=s3 needs CCML_S3_BUCKET``).
        """
        own = {key for v in backend_settings.variables(type(self)) for key in (v.field, v.argument)}
        extra = {key: values.pop(key) for key in [k for k in values if not k.startswith("_") and k not in own]}
        super().__init__(**values)
        if extra:
            offered = {v.key for v in backend_settings.registered(REGISTRIES)}
            if unknown := sorted(set(extra) - offered):
                read_by_none = ", ".join(f"CCML_{key.upper()}" for key in unknown)
                raise ConfigError(f"unknown setting(s): {', '.join(unknown)} (nothing reads {read_by_none})")
        self._backend_values = extra
        self._env_file = values.get("_env_file", self.model_config.get("env_file"))
        for registry, name in self.chosen_backends():
            self.backend(registry, name)  # fail at start-up, not at first use

    @field_validator("storage", "trainer", "predictor")
    @classmethod
    def _known_component(cls, value: str, info: ValidationInfo) -> str:
        registries = {registry.setting: registry for registry in REGISTRIES if registry.setting}
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

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Build settings from the environment, turning validation errors into ``ConfigError``.

        ``CCML_*`` variables of the environment or ``.env`` that no setting reads (Settings' own,
        every registered backend's, ``OTHER_VARIABLES``) produce one ``UnknownSettingWarning``
        naming them, on stderr.
        """
        own = {v.name for v in backend_settings.variables(cls)} | OTHER_VARIABLES
        unknown = backend_settings.unknown_variables(own, REGISTRIES, cls.model_config.get("env_file"))
        if unknown:
            message = f"unknown CCML_* variables, ignored: {', '.join(unknown)}"
            warnings.warn(message, UnknownSettingWarning, stacklevel=2)
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

    def chosen_backends(self) -> list[tuple[Registry[Any], str]]:
        """The backends the settings pick (store, trainer, predictor) that declare settings of their own."""
        picked = [(registry, str(getattr(self, registry.setting))) for registry in REGISTRIES if registry.setting]
        return [(registry, name) for registry, name in picked if registry.settings_model(name) is not None]

    @overload
    def backend(self, registry: Registry[Any], name: str) -> BaseSettings: ...

    @overload
    def backend(self, registry: Registry[Any], name: str, model: type[M]) -> M: ...

    def backend(self, registry: Registry[Any], name: str, model: type[M] | None = None) -> BaseSettings:
        """The settings of backend ``name`` of ``registry``, read once from the environment, ``.env`` and overrides.

        With ``model``, the settings are checked to be of that class (and typed as such).

        Raises:
            ConfigError: the backend declares no settings (or not ``model``), or they are
                missing or invalid: the message names the ``CCML_*`` variables.
        """
        key = (registry.group, name)
        if key not in self._backends:
            declared = registry.settings_model(name)
            if declared is None:
                raise ConfigError(f"{registry.concept} {name!r} declares no settings")
            picked_by = backend_settings.chooser(registry, name)
            self._backends[key] = backend_settings.build(declared, self._backend_values, picked_by, self._env_file)
        values = self._backends[key]
        if model is not None and not isinstance(values, model):
            raise ConfigError(f"{registry.concept} {name!r} has {type(values).__name__} settings, not {model.__name__}")
        return values

    def masked(self) -> dict[str, Any]:
        """The effective settings (the chosen backends' included) as JSON-ready values, secrets as ``**********``."""
        values = self.model_dump(mode="json")
        for registry, name in self.chosen_backends():
            backend = self.backend(registry, name)
            dumped = backend.model_dump(mode="json")
            values.update({v.key: dumped[v.field] for v in backend_settings.variables(type(backend))})
        return values


def setting_variables() -> set[str]:
    """Every ``CCML_*`` variable a setting reads: Settings' own and those of every registered backend."""
    own = {v.name for v in backend_settings.variables(Settings)}
    return own | {v.name for v in backend_settings.registered(REGISTRIES)}
