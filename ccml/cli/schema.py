"""``ccml schema infer``: draft a feature schema from a CSV file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ccml.cli.common import app, user_errors
from ccml.core.errors import DataSourceError

schema_app = typer.Typer(help="Feature schemas.", no_args_is_help=True)
app.add_typer(schema_app, name="schema")


@schema_app.command("infer")
@user_errors
def schema_infer(
    file: Annotated[Path, typer.Argument(help="The CSV file to draft a schema for.")],
    target: Annotated[str | None, typer.Option(help="The target column (asked for when ambiguous).")] = None,
    ids: Annotated[
        list[str] | None, typer.Option("--id", help="An id column, not a feature (repeat for several).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the schema here instead of stdout.")] = None,
    name: Annotated[str | None, typer.Option(help="The schema's name (default: the file's stem).")] = None,
) -> None:
    """Draft a schema: feature types, categories with counts, ranges, ids, the target, and what was guessed."""
    from ccml.models.training.schema_inference import AmbiguousTargetError, infer_schema
    from ccml.models.training.schema_toml import render_schema
    from ccml.storage.csv_text import read_csv_text

    try:
        data = file.read_bytes()
    except OSError as exc:
        raise DataSourceError(f"cannot read {file}: {exc.strerror or exc}") from exc
    frame = read_csv_text(data, str(file))
    if frame.empty:
        raise DataSourceError(f"{file} has no data rows to draft a schema from")
    schema_name = name or file.stem
    try:
        draft = infer_schema(frame, target=target, ids=ids or [], name=schema_name)
    except AmbiguousTargetError as exc:
        if not sys.stdin.isatty():
            raise
        chosen = typer.prompt(f"Which column is the target? ({', '.join(exc.candidates)})")
        draft = infer_schema(frame, target=chosen.strip(), ids=ids or [], name=schema_name)
    text = render_schema(draft, source=file.name)
    if out is None:
        sys.stdout.write(text)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, "utf-8")
    features = draft.schema.features
    typer.echo(
        f"wrote {out}: {len(features)} features, target {draft.schema.target.column!r}, "
        f"ignored {draft.schema.id_columns or 'none'}",
        err=True,
    )
