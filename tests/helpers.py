"""Small helpers shared by the unit and contract suites (fixtures live in conftest.py)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import pytest

from ccml.core.contracts import ModelStore, Trainer
from ccml.core.errors import DataValidationError, ValidationIssue
from ccml.core.schema import FeatureSchema
from ccml.core.types import Dataset, TrainingResult, ValidatedTable
from ccml.models.training.export import export_for_serving
from ccml.models.training.fitting import EvaluationPlan, train_and_evaluate
from ccml.models.training.validation import validate
from ccml.storage.csv_text import read_csv_text

# Hyper-parameters that keep every built-in trainer fast on a few hundred rows.
FAST_PARAMS: Final[dict[str, dict[str, Any]]] = {
    "random_forest": {"n_estimators": 20, "n_jobs": 1},
    "hist_gradient_boosting": {"max_iter": 30},
    "logistic_regression": {},
}


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def dataset_from_frame(frame: pd.DataFrame, origin: str = "test.csv") -> Dataset:
    """The Dataset a CSV data source would return for ``frame`` written as CSV."""
    data = csv_bytes(frame)
    return Dataset(
        frame=read_csv_text(data, origin),
        fingerprint=hashlib.sha256(data).hexdigest(),
        source={"backend": "test", "location": origin},
        identity=origin,
    )


def text_dataset(text: pd.DataFrame, origin: str = "test.csv") -> Dataset:
    """A Dataset around an already-textual frame (cells as strings, missing as NaN)."""
    return Dataset(frame=text, fingerprint="0" * 64, source={"backend": "test", "location": origin}, identity=origin)


def store_state(store: ModelStore) -> tuple[list[str], dict[str, str], int]:
    """What a caller can observe of a store: version ids, alias targets, history length."""
    return (
        [v.id for v in store.versions()],
        {name: record.version for name, record in store.aliases().items()},
        len(store.history()),
    )


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (hidden lock files included), by relative path."""
    if not root.exists():
        return {}
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def validation_issues(frame: pd.DataFrame, schema: FeatureSchema, min_rows: int = 50) -> list[ValidationIssue]:
    """The issues validation reports for ``frame`` written as CSV (it must fail)."""
    with pytest.raises(DataValidationError) as caught:
        validate(dataset_from_frame(frame), schema, min_rows=min_rows)
    return caught.value.issues


def only_issue(issues: list[ValidationIssue], column: str) -> ValidationIssue:
    """The one issue about ``column``."""
    matching = [issue for issue in issues if issue.column == column]
    assert len(matching) == 1, issues
    return matching[0]


def column_of_type(schema: FeatureSchema, kind: str) -> str:
    """The CSV column of the schema's first feature of type ``kind``."""
    return next(f.column for f in schema.features if f.type == kind)


def fit(trainer: Trainer, table: ValidatedTable, *, cv_folds: int = 0, serving: str = "onnx") -> TrainingResult:
    """Train and evaluate as the workflow does, with the export for ``serving`` (as saved versions have)."""
    return export_for_serving(serving, train_and_evaluate(trainer, table, EvaluationPlan(cv_folds=cv_folds)))


def labelled_source(schema: FeatureSchema, frame: pd.DataFrame, positives: int) -> pd.DataFrame:
    """A generated feature frame as a training CSV's table: source column names, ``positives``
    completed rows then the rest not completed, and distinct ids."""
    n = len(frame)
    source = frame.rename(columns={f.name: f.column for f in schema.features})
    completed = schema.target.completed_value
    source[schema.target.column] = [completed] * positives + [1 - int(completed)] * (n - positives)
    source.insert(0, schema.id_columns[0], range(n))  # ids keep rows distinct
    return source


def shifted_sample(schema: FeatureSchema, frame: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """``frame`` (CSV columns) with a known drift: its first numeric feature scaled by 0.6 (a student
    spends 40% less time), and its first categorical feature's mix changed (half its values become the
    first category). Every other column is left as it was."""
    numeric = next(f for f in schema.features if f.type == "numeric")
    categorical = next(f for f in schema.features if f.type == "categorical")
    shifted = frame.copy()
    shifted[numeric.column] = (pd.to_numeric(shifted[numeric.column]) * 0.6).round(4)
    present = shifted[categorical.column].notna().to_numpy()
    picked = present & (np.random.default_rng(seed).random(len(shifted)) < 0.5)
    shifted[categorical.column] = (
        shifted[categorical.column].astype(object).where(~picked, categorical.category_list[0])
    )
    return shifted
