"""A backend declares its own settings: one module and its registration, nothing in ccml.core.

The fake store below is what a new backend (or a plugin) writes: a settings model reading
``CCML_FAKE_*`` with a required ``root``, and a factory that reads it through ``Settings.backend``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from ccml.core.backend_settings import BackendSettings, UnknownSettingWarning, variables
from ccml.core.components import build_model_store
from ccml.core.errors import ConfigError
from ccml.core.registry import MODEL_STORES
from ccml.core.settings import OTHER_VARIABLES, Settings, setting_variables
from ccml.storage.local import LocalModelStore

CCML = Path(sys.executable).parent / "ccml"


class FakeSettings(BackendSettings):
    """CCML_FAKE_*: where the fake store keeps its versions."""

    model_config = SettingsConfigDict(env_prefix="CCML_FAKE_")

    root: Path = Field(description="Directory of the fake store.")
    depth: int = Field(2, ge=1, description="Not used; an optional, validated setting.")
    token: SecretStr | None = Field(None, description="A secret: masked in Settings.masked().")


class FakeStore(LocalModelStore):
    def describe(self) -> dict[str, str]:
        return {"backend": "fake", "location": str(self.root)}


def build_fake_store(settings: Settings) -> FakeStore:
    fake = settings.backend(MODEL_STORES, "fake", FakeSettings)
    return FakeStore(fake.root, **settings.store_options())


@pytest.fixture
def fake_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake store registered as a built-in would be, for this test only."""
    monkeypatch.setattr(MODEL_STORES, "_entries", dict(MODEL_STORES._entries))
    monkeypatch.setattr(MODEL_STORES, "_settings", dict(MODEL_STORES._settings))
    MODEL_STORES.register("fake", build_fake_store, settings=FakeSettings)


@pytest.fixture
def caught() -> Iterator[list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as found:
        warnings.simplefilter("always")
        yield found


def _unknown(found: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in found if issubclass(w.category, UnknownSettingWarning)]


# -- a new backend's settings -------------------------------------------------------------------
@pytest.mark.usefixtures("fake_backend")
def test_choosing_the_backend_without_its_required_variable_names_it_at_start_up() -> None:
    with pytest.raises(ConfigError, match=r"^CCML_STORAGE=fake needs CCML_FAKE_ROOT$"):
        Settings.load(storage="fake")
    Settings.load()  # not chosen: nothing is required


@pytest.mark.usefixtures("fake_backend")
def test_the_variable_reaches_the_factory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CCML_STORAGE", "fake")
    monkeypatch.setenv("CCML_FAKE_ROOT", str(tmp_path / "fake-root"))
    store = build_model_store(Settings.load())
    assert isinstance(store, FakeStore)
    assert store.root == tmp_path / "fake-root"
    assert store.versions() == []


@pytest.mark.usefixtures("fake_backend")
def test_keyword_overrides_and_dotenv_reach_the_backend(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CCML_FAKE_ROOT", "/from/environment")
    settings = Settings(storage="fake", fake_root=tmp_path / "kw", fake_depth=5)
    assert settings.backend(MODEL_STORES, "fake", FakeSettings).root == tmp_path / "kw"
    assert settings.backend(MODEL_STORES, "fake", FakeSettings).depth == 5
    monkeypatch.delenv("CCML_FAKE_ROOT")
    (tmp_path / ".env").write_text("CCML_STORAGE=fake\nCCML_FAKE_ROOT=/from/dotenv\n")
    assert Settings.load().backend(MODEL_STORES, "fake", FakeSettings).root == Path("/from/dotenv")


@pytest.mark.usefixtures("fake_backend")
def test_invalid_backend_values_name_their_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"CCML_FAKE_DEPTH: Input should be greater than or equal to 1"):
        Settings(storage="fake", fake_root=tmp_path, fake_depth=0)


@pytest.mark.usefixtures("fake_backend")
def test_masked_shows_the_chosen_backends_settings_with_secrets_masked(tmp_path: Path) -> None:
    masked = Settings(storage="fake", fake_root=tmp_path, fake_token="fake-secret-42").masked()
    assert masked["fake_root"] == str(tmp_path)
    assert masked["fake_depth"] == 2
    assert set(masked["fake_token"]) == {"*"}
    assert "fake-secret-42" not in json.dumps(masked)
    assert "fake_root" not in Settings().masked()  # only the chosen backends'


@pytest.mark.usefixtures("fake_backend")
def test_a_registered_backends_variables_are_known(monkeypatch: pytest.MonkeyPatch) -> None:
    assert {"CCML_FAKE_ROOT", "CCML_FAKE_DEPTH", "CCML_FAKE_TOKEN"} <= setting_variables()
    monkeypatch.setenv("CCML_FAKE_ROOT", "/somewhere")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnknownSettingWarning)
        Settings.load()


def test_without_its_registration_the_variable_is_unknown(
    monkeypatch: pytest.MonkeyPatch, caught: list[warnings.WarningMessage]
) -> None:
    monkeypatch.setenv("CCML_FAKE_ROOT", "/somewhere")
    Settings.load()
    assert _unknown(caught) == ["unknown CCML_* variables, ignored: CCML_FAKE_ROOT"]
    with pytest.raises(ConfigError, match=r"unknown setting\(s\): fake_root"):
        Settings(fake_root="/somewhere")


def test_variables_follow_prefix_and_alias() -> None:
    assert [(v.field, v.name, v.key) for v in variables(FakeSettings)] == [
        ("root", "CCML_FAKE_ROOT", "fake_root"),
        ("depth", "CCML_FAKE_DEPTH", "fake_depth"),
        ("token", "CCML_FAKE_TOKEN", "fake_token"),
    ]
    schema = next(v for v in variables(Settings) if v.field == "schema_file")
    assert (schema.argument, schema.name) == ("CCML_SCHEMA", "CCML_SCHEMA")


# -- unknown CCML_* variables --------------------------------------------------------------------
def test_unknown_variables_of_environment_and_dotenv_make_one_warning_naming_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caught: list[warnings.WarningMessage]
) -> None:
    monkeypatch.setenv("CCML_S3_BUCKT", "typo")
    monkeypatch.setenv("ccml_colour", "lower case counts too")
    (tmp_path / ".env").write_text("CCML_MIN_ROWS=60\nCCML_FROM_DOTENV=1\nOTHER_TOOL_SETTING=1\n")
    settings = Settings.load()
    assert settings.min_rows == 60
    assert _unknown(caught) == [
        "unknown CCML_* variables, ignored: CCML_COLOUR, CCML_FROM_DOTENV, CCML_S3_BUCKT (did you mean CCML_S3_BUCKET?)"
    ]


def test_known_variables_make_no_warning(
    monkeypatch: pytest.MonkeyPatch, caught: list[warnings.WarningMessage]
) -> None:
    # The S3 variables are known whatever the store (event retraining reads them with a local one),
    # and so are the variables `ccml serve` reads itself.
    known = {"CCML_S3_BUCKET": "b", "CCML_S3_DATA_PREFIX": "new/", "CCML_MIN_ROWS": "60", "CCML_SCHEMA": "s.toml"}
    for name, value in {**known, **dict.fromkeys(OTHER_VARIABLES, "1")}.items():
        monkeypatch.setenv(name, value)
    Settings.load()
    assert _unknown(caught) == []


def test_the_warning_goes_to_stderr_and_json_output_stays_one_document(tmp_path: Path) -> None:
    if not CCML.exists():
        pytest.skip(f"console script not installed at {CCML}")
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("CCML_")}
    env.update(CCML_HOME=str(tmp_path / "home"), CCML_TRAINR="logistic_regression", CCML_PORT="9000")
    done = subprocess.run(
        [str(CCML), "config", "--json"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["trainer"] == "random_forest"  # the typo is not read, and says so:
    assert "UnknownSettingWarning: unknown CCML_* variables, ignored: CCML_TRAINR (did you mean CCML_TRAINER?)" in (
        done.stderr
    )
    assert "CCML_PORT" not in done.stderr
