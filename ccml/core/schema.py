"""The declarative feature schema: what a dataset's columns mean, loaded from TOML.

Everything dataset-specific (column names, ranges, categories, which target value means
"completed", how the synthetic generator shapes each feature) lives in a schema file, so a
new dataset needs only a new file. The built-in default describes the course-engagement data.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ccml.core.errors import SchemaError

FeatureType = Literal["numeric", "integer", "categorical", "ordinal", "boolean"]
# Types whose valid values are a listed set: categorical (unordered, one-hot encoded) and
# ordinal (ordered: the model takes a value's position in the list as a number).
CATEGORY_TYPES: frozenset[str] = frozenset({"categorical", "ordinal"})
Category = str | int
DEFAULT_SCHEMA_RESOURCE = "engagement.toml"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SyntheticHints(_Frozen):
    """How the synthetic generator draws this feature (see ``ccml.models.training.synthetic``).

    ``loading`` ties the feature to the latent engagement level (-1..1); ``weight`` is its
    effect on the log-odds of completion per standard deviation; ``low``/``high`` narrow the
    drawn range inside the valid one; ``weights`` give categorical frequencies.
    """

    loading: Annotated[float, Field(ge=-1, le=1)] = 0.0
    weight: float = 0.0
    low: float | None = None
    high: float | None = None
    weights: list[float] | None = None


class Feature(_Frozen):
    """One model input: its API name, CSV column, type and valid values.

    ``optional`` lets a training file hold no information in the column (every cell blank, or
    one value throughout); validation refuses such a column otherwise. It is left out of the
    dump when false, so schemas that do not use it keep the fingerprint and the manifest form
    they had before it existed.
    """

    name: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]*$")]
    column: str
    type: FeatureType
    description: str = ""
    unit: str | None = None
    min: float | None = None
    max: float | None = None
    categories: list[Category] | None = None
    labels: dict[str, str] | None = None
    example: Category | float | bool | None = None
    synthetic: SyntheticHints = SyntheticHints()
    optional: Annotated[bool, Field(exclude_if=lambda optional: not optional)] = False

    @model_validator(mode="after")
    def _check_kind(self) -> Self:
        if self.type in ("numeric", "integer"):
            if self.min is None or self.max is None:
                raise ValueError(f"feature {self.name!r}: a {self.type} feature must declare min and max")
            if self.min >= self.max:
                raise ValueError(f"feature {self.name!r}: min must be below max")
            if self.categories is not None:
                raise ValueError(f"feature {self.name!r}: only categorical and ordinal features have categories")
        elif self.type in CATEGORY_TYPES:
            if not self.categories:
                raise ValueError(f"feature {self.name!r}: a {self.type} feature must list its categories")
            if len(set(map(str, self.categories))) != len(self.categories):
                raise ValueError(f"feature {self.name!r}: categories must be unique")
            if len({type(c) for c in self.categories}) != 1:
                raise ValueError(f"feature {self.name!r}: categories must be all strings or all integers")
        elif self.min is not None or self.max is not None or self.categories is not None:
            raise ValueError(f"feature {self.name!r}: a boolean feature takes no range or categories")
        if self.type == "ordinal" and (self.min is not None or self.max is not None):
            raise ValueError(
                f"feature {self.name!r}: an ordinal feature takes no range (its categories are its values)"
            )
        return self

    @property
    def bounds(self) -> tuple[float, float]:
        """(min, max) of a numeric or integer feature."""
        if self.min is None or self.max is None:
            raise SchemaError(f"feature {self.name!r} ({self.type}) has no range")
        return self.min, self.max

    @property
    def category_list(self) -> list[Category]:
        """The categories of a categorical feature; ``SchemaError`` for a feature of another type."""
        if self.categories is None:
            raise SchemaError(f"feature {self.name!r} ({self.type}) has no categories")
        return self.categories

    @property
    def is_numeric(self) -> bool:
        """Whether the model takes the value as a number: numeric, integer, boolean, and ordinal (its category's
        position in the list); not categorical (one-hot encoded)."""
        return self.type != "categorical"

    @property
    def has_categories(self) -> bool:
        """Whether the valid values are the listed categories (categorical and ordinal features)."""
        return self.type in CATEGORY_TYPES

    def example_value(self) -> Category | float | bool:
        """A valid value for documentation: the declared example, else a mid-range one."""
        if self.example is not None:
            return self.example
        if self.has_categories:
            return self.category_list[0]
        if self.type == "boolean":
            return False
        low, high = self.bounds
        middle = (low + high) / 2
        return int(middle) if self.type == "integer" else middle


class Target(_Frozen):
    """The label column and which of its values mean the student completed.

    ``completed_value`` is one value, or a list of them (OULAD's ``final_result``: Pass,
    Distinction and Fail all mean "completed"); every other value means not completed.
    """

    column: str
    completed_value: Category | Annotated[list[Category], Field(min_length=1)]
    labels: tuple[str, str] = ("Not Completed", "Completed")
    description: str = ""

    @model_validator(mode="after")
    def _check_values(self) -> Self:
        values = self.completed_values
        if len({type(v) for v in values}) != 1:
            raise ValueError("completed_value: a list must hold all strings or all integers")
        if len(set(values)) != len(values):
            raise ValueError("completed_value: values must be unique")
        return self

    @property
    def completed_values(self) -> list[Category]:
        """The values that mean "completed", as a list (one value, or the listed ones)."""
        return list(self.completed_value) if isinstance(self.completed_value, list) else [self.completed_value]


class Synthetic(_Frozen):
    """Dataset-level parameters of the synthetic generator."""

    positive_rate: Annotated[float, Field(gt=0, lt=1)] = 0.4
    missing_rate: Annotated[float, Field(ge=0, lt=0.5)] = 0.01
    noise: Annotated[float, Field(ge=0)] = 1.0
    id_start: int = 1


class GroupSynthetic(_Frozen):
    """How the synthetic generator draws a group column and the disparity it builds in.

    ``weights`` are the categories' frequencies; ``shift`` adds to a category's completion
    log-odds (students with the same features complete less often); ``noise`` adds that much
    extra noise (standard deviation) to a category's log-odds, so its features predict less.
    """

    weights: list[float] | None = None
    shift: dict[str, float] = {}
    noise: dict[str, Annotated[float, Field(ge=0)]] = {}


class Group(_Frozen):
    """A column the evaluation reports fairness on (gender, age band, deprivation band, ...).

    By default (``feature = false``) it is not a model input: no feature may read its column.
    ``feature = true`` says, deliberately, that the model also takes it: a ``[[features]]``
    entry must then read the same column. ``categories`` (optional) lists the valid values;
    other cells, and blank ones, are reported as the group "(missing)".
    """

    name: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]*$")]
    column: str
    description: str = ""
    categories: list[Category] | None = None
    feature: bool = False
    synthetic: GroupSynthetic = GroupSynthetic()

    @model_validator(mode="after")
    def _check_categories(self) -> Self:
        if self.categories is not None and len(set(map(str, self.categories))) != len(self.categories):
            raise ValueError(f"group {self.name!r}: categories must be unique")
        return self


class FeatureSchema(_Frozen):
    """A dataset's features, target, ignored id columns and the group columns fairness is reported on.

    ``groups`` is left out of the dump when empty, so schemas without groups keep their fingerprint.
    """

    name: str
    description: str = ""
    id_columns: list[str] = []
    target: Target
    features: Annotated[list[Feature], Field(min_length=1)]
    synthetic: Synthetic = Synthetic()
    groups: Annotated[list[Group], Field(exclude_if=lambda groups: not groups)] = []

    @model_validator(mode="after")
    def _check_unique(self) -> Self:
        shared = [g.column for g in self.groups if not g.feature]
        for what, values in (
            ("feature names", [f.name for f in self.features]),
            ("group names", [g.name for g in self.groups]),
            ("source columns", [f.column for f in self.features] + [self.target.column] + self.id_columns + shared),
        ):
            duplicates = sorted({v for v in values if values.count(v) > 1})
            if duplicates:
                raise ValueError(f"{what} must be unique; repeated: {duplicates}")
        feature_columns = {f.column for f in self.features}
        for group in self.groups:
            if group.feature and group.column not in feature_columns:
                raise ValueError(
                    f"group {group.name!r}: feature = true needs a [[features]] entry reading column {group.column!r}"
                )
        return self

    @property
    def group_columns(self) -> list[str]:
        """Source columns of the declared groups (a training file may lack them: fairness is then skipped)."""
        return [g.column for g in self.groups]

    @property
    def feature_names(self) -> list[str]:
        """The features' API names, in schema order (the order of the model's input columns)."""
        return [f.name for f in self.features]

    @property
    def columns(self) -> list[str]:
        """Source columns a training CSV must have."""
        return [f.column for f in self.features] + [self.target.column]

    def feature(self, name: str) -> Feature:
        """Return the feature whose API name is ``name``; ``KeyError`` if there is none."""
        for feature in self.features:
            if feature.name == name:
                return feature
        raise KeyError(name)

    def fingerprint(self) -> str:
        """sha256 of the canonical JSON form: equal schemas, equal fingerprints."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def example_record(self) -> dict[str, Category | float | bool]:
        """Return one valid record, each feature at its ``example_value`` (API examples, smoke predictions)."""
        return {f.name: f.example_value() for f in self.features}

    @classmethod
    def from_toml(cls, text: str, *, origin: str = "<string>") -> FeatureSchema:
        """Parse and validate a schema from TOML text; ``origin`` names it in error messages.

        Raises:
            SchemaError: the text is not valid TOML, or not a valid schema (every problem, by field path).
        """
        try:
            data: dict[str, Any] = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise SchemaError(f"schema {origin} is not valid TOML: {exc}") from exc
        return cls.from_dict(data, origin=origin)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, origin: str = "<dict>") -> FeatureSchema:
        """Validate a schema from parsed data (a TOML table, a manifest's ``schema``); ``origin`` names it in errors.

        Raises:
            SchemaError: the data is not a valid schema; the message lists every problem by field path.
        """
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(f"{_location(e['loc'], data)}: {e['msg']}" for e in exc.errors())
            raise SchemaError(f"schema {origin} is invalid: {problems}") from exc


def _location(loc: tuple[int | str, ...], data: dict[str, Any]) -> str:
    """A validation error's place, naming the feature it is in: ``features[2] (quiz_scores).column``.

    A position alone makes the user count ``[[features]]`` tables; the name (or the column,
    when the name is the missing part) finds the table at once.
    """
    if not loc:
        return "(top level)"
    if len(loc) >= 2 and loc[0] == "features" and isinstance(loc[1], int):
        features = data.get("features")
        table = features[loc[1]] if isinstance(features, list) and loc[1] < len(features) else None
        label = ""
        if isinstance(table, dict):
            named = table.get("name") or table.get("column")
            label = f" ({named})" if isinstance(named, str) and named else ""
        rest = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc[2:])
        return f"features[{loc[1]}]{label}{rest}"
    return ".".join(map(str, loc))


def load_schema(path: Path | str | None = None) -> FeatureSchema:
    """Load a schema file (a table's, or an activity log's derived table), or the built-in engagement schema."""
    if path is None:
        text = resources.files("ccml.builtin_schemas").joinpath(DEFAULT_SCHEMA_RESOURCE).read_text("utf-8")
        return FeatureSchema.from_toml(text, origin=f"builtin:{DEFAULT_SCHEMA_RESOURCE}")
    from ccml.core.activity import ActivitySchema, is_activity_data, read_schema_data

    # A schema file may declare an activity log instead of a table: its model's inputs are
    # then the per-enrollment features computed from that log.
    data, origin = read_schema_data(path)
    if is_activity_data(data):
        return ActivitySchema.from_dict(data, origin=origin).feature_schema()
    return FeatureSchema.from_dict(data, origin=origin)
