"""The error hierarchy: one root, one subclass per concept.

Entry points (CLI, API, Lambda handler) catch ``CcmlError`` and turn it into a one-line
message, an HTTP status or a structured log line; anything else is a programming error.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class CcmlError(Exception):
    """Root of every error ccml raises on purpose."""

    code = "ccml_error"


class ConfigError(CcmlError):
    """Settings are invalid or name an unknown component."""

    code = "config_error"


class EventError(CcmlError):
    """An event handed to the retrainer is not one it can read (malformed, or of another kind)."""

    code = "event_error"


class SchemaError(CcmlError):
    """A feature schema file is missing, unreadable or inconsistent."""

    code = "schema_error"


class DataSourceError(CcmlError):
    """Training data could not be read."""

    code = "data_source_error"


@dataclass(frozen=True)
class ValidationIssue:
    """One problem found in a training table, with where it occurs."""

    column: str
    problem: str
    count: int = 1
    rows: tuple[int, ...] = field(default_factory=tuple)

    def describe(self) -> str:
        """Return the issue as one line: column, problem, count and the first rows where it occurs."""
        where = f" (rows {', '.join(map(str, self.rows))}{', ...' if self.count > len(self.rows) else ''})"
        return f"{self.column}: {self.problem} x{self.count}{where if self.rows else ''}"


class DataValidationError(CcmlError):
    """The training table failed validation; ``issues`` lists every problem found."""

    code = "data_validation_error"

    def __init__(self, issues: list[ValidationIssue]) -> None:
        self.issues = issues
        super().__init__(self.report())

    def report(self) -> str:
        """Return every issue, one per line, under a count of them: the exception's message."""
        lines = [f"data validation failed with {len(self.issues)} problem(s):"]
        lines += [f"  - {issue.describe()}" for issue in self.issues]
        return "\n".join(lines)


class ModelStoreError(CcmlError):
    """The model store could not complete an operation."""

    code = "model_store_error"


class ModelNotFoundError(ModelStoreError):
    """A version or alias does not exist in the store."""

    code = "model_not_found"


class ObjectExistsError(ModelStoreError):
    """A write-once object (a version's file, a claim, a history record) already exists."""

    code = "object_exists"


class ModelVersionExistsError(ObjectExistsError):
    """A model version with this id already exists."""

    code = "model_version_exists"


class ArtifactIntegrityError(ModelStoreError):
    """An artifact failed its checksum or signature, or was made by an incompatible library."""

    code = "artifact_integrity_error"


class ConcurrentUpdateError(ModelStoreError):
    """Another writer changed an alias between our read and our write."""

    code = "concurrent_update"


class TrainingError(CcmlError):
    """Fitting or evaluating a model failed."""

    code = "training_error"


class PredictionError(CcmlError):
    """A model could not produce predictions."""

    code = "prediction_error"


class ModelNotLoadedError(PredictionError):
    """The server has no model loaded yet (no champion, or none that loads): it answers 503."""

    code = "model_not_loaded"


class ExplanationUnavailableError(PredictionError):
    """The model version has no explainer (a plugin's model, or one trained before explanations): 409."""

    code = "explanation_unavailable"


class InsufficientTimeError(CcmlError):
    """Too little time is left (in a Lambda invocation) to start a retrain: run it elsewhere."""

    code = "insufficient_time"


class InvalidInputError(PredictionError):
    """Prediction input does not match the feature schema."""

    code = "invalid_input"
