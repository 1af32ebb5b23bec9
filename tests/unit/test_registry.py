from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings, SettingsConfigDict

from ccml.core.backend_settings import BackendSettings
from ccml.core.components import build_data_source, build_model_store, build_predictor, build_trainer
from ccml.core.errors import ConfigError
from ccml.core.registry import DATA_SOURCES, MODEL_STORES, PREDICTORS, TRAINERS, Registry
from ccml.core.settings import Settings, setting_variables
from ccml.core.types import TrainingResult
from ccml.models.serving.onnx import OnnxPredictor
from ccml.models.serving.sklearn import SklearnPredictor
from ccml.models.training.trainers import (
    HistGradientBoostingTrainer,
    LogisticRegressionTrainer,
    RandomForestTrainer,
)
from ccml.storage.local import LocalDataSource, LocalModelStore
from ccml.storage.s3_settings import S3Settings, S3StoreSettings

PLUGIN_MODULE = "ccml_dummy_store_plugin"


def _factory(settings: object) -> str:
    return f"built with {type(settings).__name__}"


def test_registered_factory_is_returned() -> None:
    registry: Registry[object] = Registry("widget", "ccml.tests.widgets")
    registry.register("plain", _factory)
    assert registry.get("plain") is _factory
    assert registry.names() == ["plain"]


def test_unknown_key_error_lists_known_names() -> None:
    registry: Registry[object] = Registry("widget", "ccml.tests.widgets")
    registry.register("alpha", _factory)
    registry.register("beta", _factory)
    with pytest.raises(ConfigError, match=r"unknown widget 'gamma'; known: alpha, beta"):
        registry.get("gamma")


def test_empty_registry_says_none_are_known() -> None:
    registry: Registry[object] = Registry("widget", "ccml.tests.widgets")
    with pytest.raises(ConfigError, match=r"\(none\)"):
        registry.check("anything")


def test_dotted_path_is_imported_on_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    registry: Registry[object] = Registry("widget", "ccml.tests.widgets")
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    registry.register("lazy", "colorsys:rgb_to_hsv")
    assert "colorsys" not in sys.modules
    factory = registry.get("lazy")
    assert "colorsys" in sys.modules
    assert factory is sys.modules["colorsys"].rgb_to_hsv


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("colorsys", "not of the form"),
        ("colorsys:no_such_function", "has no attribute"),
        ("ccml_no_such_module_anywhere:factory", "cannot import"),
        ("colorsys:ONE_THIRD", "not callable"),
    ],
)
def test_bad_dotted_path_raises_config_error(path: str, message: str) -> None:
    registry: Registry[object] = Registry("widget", "ccml.tests.widgets")
    registry.register("broken", path)
    with pytest.raises(ConfigError, match=message):
        registry.get("broken")


@pytest.mark.parametrize("name", ["", "Local", "S3"])
def test_register_rejects_empty_or_uppercase_names(name: str) -> None:
    registry: Registry[object] = Registry("widget", "ccml.tests.widgets")
    with pytest.raises(ValueError, match="lowercase"):
        registry.register(name, _factory)


def test_builtin_registries_hold_the_documented_names() -> None:
    assert {"local", "s3"} <= set(MODEL_STORES.names())
    assert {"local", "s3"} <= set(DATA_SOURCES.names())
    assert {"random_forest", "hist_gradient_boosting", "logistic_regression"} <= set(TRAINERS.names())
    assert "sklearn" in PREDICTORS.names()


def test_build_functions_turn_settings_into_components(settings: Settings, training: TrainingResult) -> None:
    assert isinstance(build_model_store(settings), LocalModelStore)
    assert build_model_store(settings).root == settings.models_root
    source = build_data_source(settings, "file:///tmp/data.csv")
    assert isinstance(source, LocalDataSource)
    assert source.path == Path("/tmp/data.csv")
    assert isinstance(build_data_source(settings, "relative/data.csv"), LocalDataSource)
    assert isinstance(build_predictor(settings, training.artifact), OnnxPredictor)  # the default
    sklearn_settings = settings.model_copy(update={"predictor": "sklearn"})
    assert isinstance(build_predictor(sklearn_settings, training.artifact), SklearnPredictor)


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("random_forest", RandomForestTrainer),
        ("hist_gradient_boosting", HistGradientBoostingTrainer),
        ("logistic_regression", LogisticRegressionTrainer),
    ],
)
def test_trainer_setting_picks_the_trainer_class(name: str, cls: type) -> None:
    trainer = build_trainer(Settings(trainer=name))
    assert isinstance(trainer, cls)
    assert trainer.name == name


def test_data_source_for_unknown_uri_scheme_raises_config_error(settings: Settings) -> None:
    with pytest.raises(ConfigError, match="unknown data source 'ftp'"):
        build_data_source(settings, "ftp://host/data.csv")


# -- plugins through a real entry point ------------------------------------------------------
@pytest.fixture
def dummy_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Install (on sys.path) a distribution advertising a model store in ``ccml.model_stores``."""
    site = tmp_path / "site"
    dist_info = site / "ccml_dummy_plugin-0.0.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: ccml-dummy-plugin\nVersion: 0.0.0\n")
    (dist_info / "entry_points.txt").write_text(f"[ccml.model_stores]\ndummy = {PLUGIN_MODULE}:build_dummy_store\n")
    (site / f"{PLUGIN_MODULE}.py").write_text(
        textwrap.dedent(
            """
            from ccml.storage.local import LocalModelStore


            class DummyModelStore(LocalModelStore):
                def describe(self):
                    return {"backend": "dummy", "location": str(self.root)}


            def build_dummy_store(settings):
                return DummyModelStore(settings.models_root / "dummy")
            """
        )
    )
    # Registry.get caches the imported factory: restore the registry and modules afterwards.
    monkeypatch.setattr(MODEL_STORES, "_entries", dict(MODEL_STORES._entries))
    monkeypatch.setattr(MODEL_STORES, "_settings", dict(MODEL_STORES._settings))
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    yield site
    sys.modules.pop(PLUGIN_MODULE, None)


def test_entry_point_plugin_is_listed_and_selectable(dummy_plugin: Path, tmp_path: Path) -> None:
    assert "dummy" in MODEL_STORES.names()
    settings = Settings(storage="dummy", home=tmp_path / "home")
    store = build_model_store(settings)
    assert type(store).__name__ == "DummyModelStore"
    assert store.describe()["backend"] == "dummy"
    assert store.versions() == []


def test_plugin_store_round_trips_a_model(dummy_plugin: Path, tmp_path: Path, training: TrainingResult) -> None:
    store = build_model_store(Settings(storage="dummy", home=tmp_path / "home"))
    version = store.save(training.artifact)
    assert store.load(version.id).manifest.files == training.artifact.manifest.files


def test_plugin_is_unknown_without_its_distribution() -> None:
    assert "dummy" not in MODEL_STORES.names()
    with pytest.raises(ConfigError, match="unknown model store 'dummy'"):
        Settings(storage="dummy")


# -- settings declared by an entry --------------------------------------------------------------
SETTINGS_MODULE = "ccml_dummy_settings_module"


class WidgetSettings(BackendSettings):
    model_config = SettingsConfigDict(env_prefix="CCML_WIDGET_")
    size: int = 1


class NotCcmlSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OTHER_")


def test_settings_model_is_the_registered_class_or_none() -> None:
    registry: Registry[object] = Registry("widget", "ccml.tests.widgets")
    registry.register("plain", _factory)
    registry.register("sized", _factory, settings=WidgetSettings)
    assert registry.settings_model("plain") is None
    assert registry.settings_model("sized") is WidgetSettings
    registry.register("sized", _factory)  # registered again without settings: it has none
    assert registry.settings_model("sized") is None
    with pytest.raises(ConfigError, match="unknown widget 'other'"):
        registry.settings_model("other")


def test_settings_path_is_imported_on_first_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / f"{SETTINGS_MODULE}.py").write_text(
        "from pydantic_settings import SettingsConfigDict\n"
        "from ccml.core.backend_settings import BackendSettings\n\n"
        "class LazySettings(BackendSettings):\n"
        "    model_config = SettingsConfigDict(env_prefix='CCML_LAZY_')\n"
        "    level: int = 3\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, SETTINGS_MODULE, raising=False)
    registry: Registry[object] = Registry("widget", "ccml.tests.widgets")
    registry.register("lazy", _factory, settings=f"{SETTINGS_MODULE}:LazySettings")
    assert SETTINGS_MODULE not in sys.modules
    model = registry.settings_model("lazy")
    assert model is sys.modules[SETTINGS_MODULE].LazySettings
    assert model is not None
    assert model().level == 3  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ("colorsys:ONE_THIRD", "no BaseSettings class"),
        (f"{__name__}:NotCcmlSettings", r"must read CCML_\* \(env_prefix='OTHER_'\)"),
        ("ccml_no_such_module_anywhere:Settings", "cannot import"),
    ],
)
def test_bad_settings_path_raises_config_error(settings: str, message: str) -> None:
    registry: Registry[object] = Registry("widget", "ccml.tests.widgets")
    registry.register("broken", _factory, settings=settings)
    with pytest.raises(ConfigError, match=message):
        registry.settings_model("broken")


def test_builtin_s3_entries_declare_their_settings() -> None:
    assert MODEL_STORES.settings_model("s3") is S3StoreSettings
    assert DATA_SOURCES.settings_model("s3") is S3Settings
    assert MODEL_STORES.settings_model("local") is None
    assert MODEL_STORES.setting == "storage"
    assert DATA_SOURCES.setting is None  # a location's URI scheme picks the data source


@pytest.fixture
def plugin_with_settings(dummy_plugin: Path) -> Path:
    """The dummy plugin, now also declaring settings (CCML_DUMMY_*) in ``ccml.model_stores.settings``."""
    with (dummy_plugin / "ccml_dummy_plugin-0.0.0.dist-info" / "entry_points.txt").open("a") as points:
        points.write(f"\n[ccml.model_stores.settings]\ndummy = {PLUGIN_MODULE}:DummySettings\n")
    with (dummy_plugin / f"{PLUGIN_MODULE}.py").open("a") as module:
        module.write(
            textwrap.dedent(
                """
                from pydantic_settings import SettingsConfigDict
                from ccml.core.backend_settings import BackendSettings


                class DummySettings(BackendSettings):
                    model_config = SettingsConfigDict(env_prefix="CCML_DUMMY_")
                    subdir: str


                def build_dummy_store(settings):
                    dummy = settings.backend(MODEL_STORES, "dummy")
                    return DummyModelStore(settings.models_root / dummy.subdir)


                from ccml.core.registry import MODEL_STORES
                """
            )
        )
    importlib.invalidate_caches()
    return dummy_plugin


def test_plugin_declares_settings_through_an_entry_point(
    plugin_with_settings: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match=r"^CCML_STORAGE=dummy needs CCML_DUMMY_SUBDIR$"):
        Settings.load(storage="dummy", home=tmp_path / "home")
    monkeypatch.setenv("CCML_DUMMY_SUBDIR", "elsewhere")
    store = build_model_store(Settings.load(storage="dummy", home=tmp_path / "home"))
    assert store.describe() == {"backend": "dummy", "location": str(tmp_path / "home" / "models" / "elsewhere")}
    assert "CCML_DUMMY_SUBDIR" in setting_variables()
