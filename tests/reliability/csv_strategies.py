"""Hypothesis strategies for hostile training CSV files, one per kind of damage.

Most cases start from real rows of the built-in schema (synthetic students), so they get past
the parser into validation; each case carries what the contract says must happen to it (an
oracle), where the damage makes that certain.
"""

from __future__ import annotations

import csv
import functools
import io
from collections.abc import Callable
from dataclasses import dataclass

from hypothesis import strategies as st

from ccml.core.errors import CcmlError, DataSourceError, DataValidationError
from ccml.core.schema import load_schema
from ccml.models.training.synthetic import generate

SCHEMA = load_schema()
FEATURE_COLUMNS = [f.column for f in SCHEMA.features]
TARGET = SCHEMA.target.column
MAX_ROWS = 40
# Enough rows to pass validation at the suite's min_rows, for kinds whose damage may be harmless.
VALID_ROWS = 12

Table = tuple[list[str], list[list[str]]]


@dataclass(frozen=True, repr=False)
class Case:
    """CSV bytes and what must come of them: ``error`` raised (naming ``mentions``), or never
    ``forbidden``, or the same table as ``same_as`` parses to."""

    kind: str
    data: bytes
    error: type[CcmlError] | None = None
    mentions: tuple[str, ...] = ()
    forbidden: type[CcmlError] | None = None
    same_as: bytes | None = None

    def __repr__(self) -> str:  # hypothesis prints failing cases: not 3 MB of them
        head = self.data[:300]
        return f"Case({self.kind!r}, {len(self.data):,} bytes: {head!r}{'...' if len(self.data) > 300 else ''})"


@functools.cache
def _base() -> Table:
    frame = generate(SCHEMA, 2000, seed=3)
    rows = frame.astype(object).where(frame.notna(), "").astype(str).to_numpy().tolist()
    return [str(c) for c in frame.columns], rows


def _render(header: list[str], rows: list[list[str]], delimiter: str = ",") -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


@st.composite
def tables(draw: st.DrawFn, min_rows: int = 0, max_rows: int = MAX_ROWS) -> Table:
    """A header and consecutive rows of the base table (every cell valid)."""
    header, rows = _base()
    n = draw(st.integers(min_rows, max_rows))
    start = draw(st.integers(0, len(rows) - n))
    return list(header), [list(row) for row in rows[start : start + n]]


def _cells(draw: st.DrawFn, rows: list[list[str]], columns: list[str] | None = None) -> list[tuple[int, int]]:
    """A few (row, column) positions, restricted to ``columns`` when given."""
    header = _base()[0]
    allowed = [header.index(c) for c in columns] if columns else list(range(len(header)))
    cell = st.tuples(st.integers(0, len(rows) - 1), st.sampled_from(allowed))
    return draw(st.lists(cell, min_size=1, max_size=6))


@st.composite
def random_bytes(draw: st.DrawFn) -> Case:
    prefix = draw(st.sampled_from([b"", _render(_base()[0], []).encode()]))
    return Case("random_bytes", prefix + draw(st.binary(max_size=600)))


_FOREIGN = st.text(st.characters(min_codepoint=0x80, max_codepoint=0x2FFFF, exclude_categories=["Cs"]), min_size=1)
_ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-be", "utf-32", "latin-1", "cp1252", "shift_jis", "gb18030"]


@st.composite
def encodings(draw: st.DrawFn) -> Case:
    header, rows = draw(tables(min_rows=VALID_ROWS))
    for row, column in _cells(draw, rows):
        rows[row][column] = draw(_FOREIGN)
    encoding = draw(st.sampled_from(_ENCODINGS))
    data = _render(header, rows).encode(encoding, errors="replace")
    if encoding.startswith("utf-8"):
        return Case("encodings", data, forbidden=DataSourceError)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return Case("encodings", data, error=DataSourceError, mentions=("UTF",))
    return Case("encodings", data)


@st.composite
def delimiters(draw: st.DrawFn) -> Case:
    header, rows = draw(tables())
    delimiter = draw(st.sampled_from([";", "\t", "|", ":"]))
    data = _render(header, rows, delimiter).encode()
    # One column named after the whole header line: every required column is missing.
    return Case("delimiters", data, error=DataValidationError, mentions=(f"{TARGET}: required column is missing",))


@st.composite
def ragged_rows(draw: st.DrawFn) -> Case:
    header, rows = draw(tables(min_rows=1))
    chosen = draw(st.sets(st.integers(0, len(rows) - 1), min_size=1))
    long = []
    for index in sorted(chosen):
        if draw(st.booleans()):
            rows[index] += draw(st.lists(st.sampled_from(rows[index]), min_size=1, max_size=3))
            long.append(index + 2)  # line numbers: the header is line 1
        else:
            del rows[index][draw(st.integers(1, len(header) - 1)) :]
    data = "".join(",".join(line) + "\n" for line in [header, *rows]).encode()
    if not long:
        return Case("ragged_rows", data, forbidden=DataSourceError)
    where = f"line {long[0]};" if len(long) == 1 else f"lines {long[0]},"
    return Case("ragged_rows", data, error=DataSourceError, mentions=(f"{len(long)} row(s)", where))


@st.composite
def duplicate_headers(draw: st.DrawFn) -> Case:
    header, rows = draw(tables())
    first, second = draw(st.lists(st.integers(0, len(header) - 1), min_size=2, max_size=2, unique=True))
    name = header[first]
    header[second] = draw(st.sampled_from(["", " ", "  "])) + name + draw(st.sampled_from(["", " ", "\t"]))
    data = _render(header, rows).encode()
    return Case("duplicate_headers", data, error=DataSourceError, mentions=("more than once", repr(name)))


@st.composite
def huge_fields(draw: st.DrawFn) -> Case:
    header, rows = draw(tables(min_rows=VALID_ROWS, max_rows=20))
    value = draw(st.sampled_from(["x", "9", "é", ",", '"', "\n", " "])) * draw(st.integers(1_000, 3_000_000))
    if draw(st.booleans()):
        header[draw(st.integers(0, len(header) - 1))] = value
    else:
        row, column = _cells(draw, rows)[0]
        rows[row][column] = value
    return Case("huge_fields", _render(header, rows).encode())


_MIXED = st.one_of(
    st.text(max_size=15),
    st.integers(-(10**20), 10**20).map(str),
    st.floats().map(repr),
    st.sampled_from(["inf", "-inf", "nan", "NULL", "true", "yes", "1e309", "0x10", "1,000", '"', "\n", " ", "-0"]),
)


@st.composite
def mixed_types(draw: st.DrawFn) -> Case:
    header, rows = draw(tables(min_rows=VALID_ROWS))
    for row, column in _cells(draw, rows):
        rows[row][column] = draw(_MIXED)
    return Case("mixed_types", _render(header, rows).encode())


@st.composite
def blank_columns(draw: st.DrawFn) -> Case:
    header, rows = draw(tables(min_rows=2))
    columns = draw(st.sets(st.sampled_from(FEATURE_COLUMNS), min_size=1, max_size=3))
    mentions = []
    for column in sorted(columns):
        index = header.index(column)
        present = [row[index] for row in rows if row[index]]
        if draw(st.booleans()) and present:
            value = present[0]
            mentions.append(f"{column}: constant")
        else:
            value = draw(st.sampled_from(["", "NaN", "NA", "null", " "]))
            mentions.append(f"{column}: every value is missing")
        for row in rows:
            row[index] = value
    return Case("blank_columns", _render(header, rows).encode(), error=DataValidationError, mentions=tuple(mentions))


@st.composite
def one_class(draw: st.DrawFn) -> Case:
    header, rows = draw(tables(min_rows=1))
    value = draw(st.sampled_from(["0", "1"]))
    for row in rows:
        row[header.index(TARGET)] = value
    mention = f"{TARGET}: needs at least 2 rows of each class"
    return Case("one_class", _render(header, rows).encode(), error=DataValidationError, mentions=(mention,))


_SAME_TABLE: dict[str, Callable[[bytes], bytes]] = {
    "bom": lambda data: b"\xef\xbb\xbf" + data,
    "crlf": lambda data: data.replace(b"\n", b"\r\n"),
    "cr": lambda data: data.replace(b"\n", b"\r"),
    "blank_lines": lambda data: b"\n\n" + data.replace(b"\n", b"\n\n", 3) + b"\n\n",
}


@st.composite
def structure(draw: st.DrawFn) -> Case:
    header, rows = draw(tables(min_rows=VALID_ROWS))
    clean = _render(header, rows).encode()
    change = draw(st.sampled_from([*_SAME_TABLE, "nul", "open_quote", "truncate", "header_only"]))
    if change in _SAME_TABLE:
        return Case("structure", _SAME_TABLE[change](clean), same_as=clean)
    if change == "nul":
        at = draw(st.integers(0, len(clean)))
        data = clean[:at] + b"\x00" + clean[at:]
        return Case("structure", data, error=DataSourceError, mentions=("NUL byte",))
    if change == "open_quote":
        lines = clean.split(b"\n")
        line = draw(st.integers(0, len(lines) - 2))
        lines[line] = b'"' + lines[line]
        mention = f"starting on line {line + 1} never closes"
        return Case("structure", b"\n".join(lines), error=DataSourceError, mentions=(mention,))
    if change == "truncate":
        return Case("structure", clean[: draw(st.integers(0, len(clean)))])
    return Case("structure", clean.split(b"\n")[0] + b"\n", error=DataValidationError, mentions=("no data rows",))


STRATEGIES: dict[str, st.SearchStrategy[Case]] = {
    "random_bytes": random_bytes(),
    "encodings": encodings(),
    "delimiters": delimiters(),
    "ragged_rows": ragged_rows(),
    "duplicate_headers": duplicate_headers(),
    "huge_fields": huge_fields(),
    "mixed_types": mixed_types(),
    "blank_columns": blank_columns(),
    "one_class": one_class(),
    "structure": structure(),
}
