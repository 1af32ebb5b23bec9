"""``ccml drift``: a CSV file's inputs against a model version's training reference (PSI per feature)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Final

import typer

from ccml.cli.common import JsonOption, app, emit, load_settings, user_errors
from ccml.cli.serving import read_csv_records
from ccml.core.contracts import CHAMPION
from ccml.core.drift import DriftReport
from ccml.core.errors import DataSourceError, ModelStoreError

# The exit status when a feature is at "drift": not 1 (a user error) nor 2 (a usage error), so a
# pipeline can tell "the data moved" from "the command failed".
DRIFT_EXIT: Final = 3


def _table(report: DriftReport, origin: str) -> str:
    lines = [f"{'feature':<28} {'psi':>8}  {'status':<13} {'rows':>7} {'missing':>8} {'in training':>12}"]
    for feature in report.features:
        psi = "-" if feature.psi is None else f"{feature.psi:.4f}"
        missing = "-" if feature.missing is None else f"{feature.missing:.1%}"
        lines.append(
            f"{feature.feature:<28} {psi:>8}  {feature.status:<13} {feature.rows:>7,} {missing:>8} "
            f"{feature.reference_missing:>12.1%}"
        )
    lines.append(
        f"{report.status}: {report.rows:,} rows of {origin} against model {report.model_version} "
        f"(watch from PSI {report.watch_psi}, drift from {report.alert_psi}, at least {report.min_rows:,} rows)"
    )
    return "\n".join(lines)


@app.command()
@user_errors
def drift(
    data: Annotated[Path, typer.Option(help="A CSV file in the training data's columns (the target may be absent).")],
    model: Annotated[str, typer.Option(help="Version id or alias whose training reference to compare with.")] = (
        CHAMPION
    ),
    as_json: JsonOption = False,
) -> None:
    """Compare a CSV file's feature distributions with a version's training data; exit 3 if any feature drifted."""
    from ccml.core.components import build_model_store
    from ccml.core.schema import FeatureSchema
    from ccml.models.serving.drift import DriftSummary
    from ccml.models.serving.records import validate_records

    settings = load_settings()
    store = build_model_store(settings)
    version = store.resolve(model)
    manifest = store.manifest(version)
    key = settings.signing_key_bytes()
    if key is not None:
        manifest.verify_signature(key)
    if manifest.reference is None:
        raise ModelStoreError(
            f"model {version} has no reference distribution (trained before ccml stored one): retrain it to "
            "compare data with it"
        )
    schema = FeatureSchema.from_dict(manifest.schema_, origin=f"model {version}")
    try:
        raw = data.read_bytes()
    except OSError as exc:
        raise DataSourceError(f"cannot read {data}: {exc.strerror or exc}") from exc
    records, _ = read_csv_records(raw, str(data), schema)
    summary = DriftSummary(manifest.reference, version)
    summary.record_many(validate_records(records, schema, allow_missing=True))
    report = summary.report(settings.drift_thresholds())
    emit(report.model_dump(mode="json"), as_json, lambda: _table(report, str(data)))
    if any(feature.status == "drift" for feature in report.features):
        raise typer.Exit(DRIFT_EXIT)
