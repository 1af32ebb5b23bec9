"""``ccml predict``, ``ccml serve`` and ``ccml config``: using models, and seeing the settings."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ccml.cli.common import JsonOption, app, emit, load_settings, user_errors
from ccml.core.contracts import CHAMPION
from ccml.core.errors import DataSourceError, InvalidInputError
from ccml.core.schema import FeatureSchema
from ccml.core.settings import Settings

# -- predict -----------------------------------------------------------------------------
Records = list[Any]
Ids = list[dict[str, Any]]


def read_csv_records(data: bytes, origin: str, schema: FeatureSchema) -> tuple[Records, Ids]:
    """A CSV file's rows as ``schema``'s feature records (not yet validated), and each row's id columns."""
    import io

    import pandas as pd

    from ccml.models.serving.records import records_from_frame
    from ccml.storage.csv_text import read_csv_text

    # The training data's rules first (encoding, unique header, no long rows), then pandas'
    # typing of the cells, which the record model expects. Ids keep their text ("007").
    text = read_csv_text(data, origin)
    typed = pd.read_csv(io.BytesIO(data), skipinitialspace=True, header=0, names=list(text.columns))
    present = [c for c in schema.id_columns if c in text.columns]
    ids: Ids = [
        {str(c): (None if pd.isna(v) else v) for c, v in row.items()} for row in text[present].to_dict("records")
    ]
    return records_from_frame(typed, schema), ids if present else [{} for _ in range(len(typed))]


def _csv_records(data: bytes, origin: str, settings: Settings) -> tuple[Records, Ids]:
    return read_csv_records(data, origin, settings.feature_schema())


def _json_records(text: str, settings: Settings) -> tuple[Records, Ids]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"input is not valid JSON: {exc}") from exc
    records = document if isinstance(document, list) else [document]
    id_columns = settings.feature_schema().id_columns
    # Id fields are not features (the record model refuses unknown fields): they travel next to the answer.
    ids = [{c: r.pop(c) for c in id_columns if c in r} if isinstance(r, dict) else {} for r in records]
    return records, ids


def _read_records(source: str, settings: Settings) -> tuple[Records, Ids]:
    if source == "-":
        data = sys.stdin.buffer.read()
        if data.lstrip().startswith((b"{", b"[")):
            return _json_records(data.decode("utf-8", errors="replace"), settings)
        return _csv_records(data, "<stdin>", settings)
    if source.lstrip().startswith(("{", "[")):
        return _json_records(source, settings)
    path = Path(source)
    try:
        data = path.read_bytes()
        if path.suffix.lower() == ".csv":
            return _csv_records(data, str(path), settings)
        return _json_records(data.decode("utf-8"), settings)
    except (OSError, ValueError) as exc:
        raise DataSourceError(f"cannot read {path}: {exc}") from exc


def _write_results(out: Path, results: list[dict[str, Any]]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".csv":
        import csv

        with out.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(results[0]) if results else ["prediction"])
            writer.writeheader()
            writer.writerows(results)
    else:
        out.write_text(json.dumps(results, indent=2) + "\n", "utf-8")


def _add_explanations(results: list[dict[str, Any]], records: Records, predictor: Any, top: int, *, csv: bool) -> None:
    """Each result's ``explanation`` (for a CSV file, its factors on one line as ``top_factors``)."""
    from ccml.models.serving.explanations import explain_records, factors_text, require_explainer

    explained = explain_records(require_explainer(predictor.artifact), records, top)
    for result, explanation in zip(results, explained, strict=True):
        if csv:
            result["top_factors"] = factors_text(explanation)
        else:
            result["explanation"] = explanation


@app.command()
@user_errors
def predict(
    source: Annotated[
        str, typer.Argument(help="A JSON object, a JSON list, a .json or .csv file, or - for stdin (CSV or JSON).")
    ],
    model: Annotated[str, typer.Option(help="Version id or alias to use.")] = CHAMPION,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N records.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the results here (.csv, else JSON) instead of stdout.")] = (
        None
    ),
    explain: Annotated[bool, typer.Option("--explain", help="Add each prediction's top factors.")] = False,
    top: Annotated[
        int | None, typer.Option(min=1, max=100, help="Factors per explanation (default CCML_EXPLAIN_TOP).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Predict completion for one or more students; the schema's id columns pass through to the output."""
    from ccml.core.components import build_model_store, build_predictor
    from ccml.models.serving.records import validate_records

    settings = load_settings()
    raw, ids = _read_records(source, settings)
    raw, ids = raw[:limit], ids[:limit]
    records = validate_records(raw, settings.feature_schema(), allow_missing=True)
    predictor = build_predictor(settings, build_model_store(settings).load(model))
    results = [
        {**key, "prediction": p.label, "probability": round(p.probability, 6), "model_version": predictor.version}
        for key, p in zip(ids, predictor.predict(records), strict=True)
    ]
    if explain:
        _add_explanations(results, records, predictor, top or settings.explain_top, csv=out is not None)
    if out is not None:
        _write_results(out, results)
        typer.echo(f"wrote {len(results)} predictions to {out} (model {predictor.version})", err=True)
        return

    def text() -> str:
        lines = []
        for i, (key, r) in enumerate(zip(ids, results, strict=True), 1):
            label = " ".join(str(v) for v in key.values())
            lines.append(
                f"{i:>5}  {label + '  ' if label else ''}{r['prediction']:<14} p(completed)={r['probability']:.3f}"
            )
            for f in r.get("explanation", {}).get("factors", []):
                lines.append(f"{'':>7}{f['direction']:<7} {f['contribution']:+.4f}  {f['feature']}={f['value']}")
        return "\n".join(lines) + f"\n(model {predictor.version})"

    emit(results, as_json, text)


# -- serve -----------------------------------------------------------------------------
@app.command()
@user_errors
def serve(
    host: Annotated[str, typer.Option(envvar="CCML_HOST", help="Interface to listen on (0.0.0.0 in a container).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(envvar="CCML_PORT", min=0, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(envvar="CCML_WORKERS", min=1, help="Worker processes.")] = 1,
) -> None:
    """Serve the champion over HTTP (Swagger UI at /docs), reloading it when it changes."""
    from ccml.api.server import serve as run_server

    load_settings()  # fail fast on bad settings, before uvicorn starts workers
    run_server(host, port, workers)


# -- config ------------------------------------------------------------------------------
@app.command()
@user_errors
def config(as_json: JsonOption = False) -> None:
    """The effective settings (secrets masked)."""
    from ccml.core.backend_settings import variables

    values = load_settings().masked()
    # Each value under the variable that sets it: a field read through an alias (schema_file,
    # from CCML_SCHEMA) is shown as CCML_SCHEMA, not as a variable nothing reads.
    names = {v.field: v.name for v in variables(Settings)}
    lines = [f"{names.get(k, f'CCML_{k.upper()}'):<29} {v}" for k, v in values.items()]
    emit(values, as_json, lambda: "\n".join(lines))
