"""Write a drafted schema as a commented TOML file (``ccml schema infer``).

The text is checked by parsing it back (``FeatureSchema.from_toml``): what the user gets is a
schema ccml loads, equal to the drafted one.
"""

from __future__ import annotations

import json
from typing import Any, Final

from ccml.core.errors import SchemaError
from ccml.core.schema import Feature, FeatureSchema
from ccml.models.training.schema_inference import RANGE_MARGIN, InferredSchema

# Categories listed with their counts in the comment above a feature; the rest are summed.
COUNTS_SHOWN: Final = 12


def _value(value: Any) -> str:
    """A TOML value: JSON's strings, numbers and arrays are TOML too (booleans and floats aside)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def _counts_comment(counts: list[tuple[str, int]]) -> list[str]:
    shown = ", ".join(f"{value} {count}" for value, count in counts[:COUNTS_SHOWN])
    rest = counts[COUNTS_SHOWN:]
    if rest:
        shown += f", and {len(rest)} more ({sum(c for _, c in rest)} rows)"
    return [f"# counts: {shown}"]


def _feature_lines(feature: Feature, draft: InferredSchema) -> list[str]:
    lines = ["", "[[features]]"]
    lines += [f"# {note}" for note in draft.notes.get(feature.column, [])]
    if feature.column in draft.counts:
        lines += _counts_comment(draft.counts[feature.column])
    lines += [f"name = {_value(feature.name)}", f"column = {_value(feature.column)}", f"type = {_value(feature.type)}"]
    if feature.min is not None and feature.max is not None:
        lines += [f"min = {_value(feature.min)}", f"max = {_value(feature.max)}"]
    if feature.categories is not None:
        lines.append(f"categories = {_value(feature.categories)}")
    lines.append(f'description = ""  # what {feature.column} means, for the API docs')
    if feature.example is not None:
        lines.append(f"example = {_value(feature.example)}")
    return lines


def render_schema(draft: InferredSchema, *, source: str) -> str:
    """The draft as TOML text with comments saying what was guessed; checked to load back as the same schema.

    Raises:
        SchemaError: the text does not load back as the drafted schema (a bug, never the user's data).
    """
    schema = draft.schema
    target = schema.target
    lines = [
        f"# Drafted by `ccml schema infer` from {source} ({draft.rows} rows). Check every line marked",
        "# 'guessed', write the descriptions, then train: ccml train --data FILE with CCML_SCHEMA=this file.",
        f"# Ranges are the data's min and max widened by {RANGE_MARGIN:.0%} of their span (see README).",
        f"name = {_value(schema.name)}",
        'description = ""',
    ]
    ignored = [f"{c}: {'; '.join(draft.notes.get(c, ['given with --id']))}" for c in schema.id_columns]
    lines += [f"# id_columns are not used by the model: {'; '.join(ignored)}" if ignored else "# no id columns"]
    lines += [f"id_columns = {_value(schema.id_columns)}", "", "[target]"]
    lines += [f"# {note}" for note in draft.notes.get(target.column, [])]
    if target.column in draft.counts:
        lines += _counts_comment(draft.counts[target.column])
    lines += [
        f"column = {_value(target.column)}",
        f"completed_value = {_value(target.completed_value)}",
        f"labels = {_value(list(target.labels))}",
    ]
    for feature in schema.features:
        lines += _feature_lines(feature, draft)
    lines += [
        "",
        "# Fairness: columns to report on per group (gender, age band, ...) go in [[groups]] tables",
        '# (name, column, optional categories; README "Fairness report"). A column used as a group',
        "# only is not a model input: move it out of [[features]] (or say feature = true on the group).",
    ]
    text = "\n".join(lines) + "\n"
    loaded = FeatureSchema.from_toml(text, origin="the drafted schema")
    if loaded != schema:
        raise SchemaError("the drafted schema does not load back as drafted (a ccml bug: please report it)")
    return text
