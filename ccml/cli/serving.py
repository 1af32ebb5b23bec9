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
from ccml.core.settings import Settings


# -- predict -----------------------------------------------------------------------------
def _read_records(source: str, settings: Settings) -> list[Any]:
    from ccml.models.serving.records import records_from_frame

    text: str
    if source == "-":
        text = sys.stdin.read()
    elif source.lstrip().startswith(("{", "[")):
        text = source
    else:
        path = Path(source)
        try:
            if path.suffix.lower() == ".csv":
                import io

                import pandas as pd

                from ccml.storage.csv_text import read_csv_text

                data = path.read_bytes()
                # The training data's rules first (encoding, unique header, no long rows), then
                # pandas' typing of the cells, which the record model expects.
                columns = read_csv_text(data, str(path)).columns
                typed = pd.read_csv(io.BytesIO(data), skipinitialspace=True, header=0, names=list(columns))
                return records_from_frame(typed, settings.feature_schema())
            text = path.read_text("utf-8")
        except (OSError, ValueError) as exc:
            raise DataSourceError(f"cannot read {path}: {exc}") from exc
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"input is not valid JSON: {exc}") from exc
    return document if isinstance(document, list) else [document]


@app.command()
@user_errors
def predict(
    source: Annotated[str, typer.Argument(help="A JSON object, a JSON list, a .json or .csv file, or - for stdin.")],
    model: Annotated[str, typer.Option(help="Version id or alias to use.")] = CHAMPION,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N records.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Predict completion for one or more students."""
    from ccml.core.components import build_model_store, build_predictor
    from ccml.models.serving.records import validate_records

    settings = load_settings()
    raw = _read_records(source, settings)[:limit]
    records = validate_records(raw, settings.feature_schema(), allow_missing=True)
    predictor = build_predictor(settings, build_model_store(settings).load(model))
    results = [
        {"prediction": p.label, "probability": round(p.probability, 6), "model_version": predictor.version}
        for p in predictor.predict(records)
    ]
    emit(
        results,
        as_json,
        lambda: (
            "\n".join(
                f"{i:>5}  {r['prediction']:<14} p(completed)={r['probability']:.3f}" for i, r in enumerate(results, 1)
            )
            + f"\n(model {predictor.version})"
        ),
    )


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
    values = load_settings().masked()
    emit(values, as_json, lambda: "\n".join(f"CCML_{k.upper():<24} {v}" for k, v in values.items()))
