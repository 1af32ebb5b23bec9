"""CSV bytes -> a table of text cells: the one parser every data source shares.

The contract a training file must meet, and what breaking it looks like:

- UTF-8 text; a leading byte-order mark is allowed. Anything else (UTF-16, Latin-1, a binary
  file, a NUL byte) is refused naming the line and byte, not guessed at: a wrong guess would
  turn category names into different categories without a word.
- Comma-separated, fields with commas, quotes or line breaks in double quotes (RFC 4180,
  spaces after a comma ignored). Blank lines are skipped.
- The first non-blank line is the header. Names are trimmed; a name used twice is refused
  (pandas would quietly rename the second ``x.1``); a blank name labels a column validation
  will ignore.
- A row with more fields than the header is refused naming its line: its cells cannot be
  matched to columns. A row with fewer fields has its last columns missing, which validation
  reports per column (a missing target value, say) like any other blank cell.

Every error is a ``DataSourceError`` naming the file, of bounded size: values are cut.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from ccml.core.errors import DataSourceError

if TYPE_CHECKING:
    import pandas as pd

MAX_VALUE_CHARS: Final = 40
MAX_LINES_REPORTED: Final = 5

_BLANK = re.compile(rb"(?:\xef\xbb\xbf)?\s*\Z")
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_LONG_ROW = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def _cut(text: str, limit: int = MAX_VALUE_CHARS) -> str:
    """``text`` shortened to ``limit`` characters: a 50 MB cell must not make a 50 MB message."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"


def read_csv_text(data: bytes, origin: str) -> pd.DataFrame:
    """Parse CSV bytes keeping every cell as text (missing cells NaN); validation does the typing.

    An empty file is an empty table, so validation reports it with every missing column.

    Raises:
        DataSourceError: the bytes break the contract in the module docstring.
    """
    import pandas as pd  # here: a server process that only reads models never needs it

    if _BLANK.match(data):
        return pd.DataFrame()
    _check_text(data, origin)
    try:
        # The header is parsed with missing-value detection off, so a column named "NA" or
        # "null" keeps its name. header=None for both reads: pandas' own header handling
        # would make the first column an index when the first data row has an extra field
        # (a silently shifted table), and renames repeated names instead of refusing them.
        header = pd.read_csv(
            io.BytesIO(data), header=None, nrows=1, dtype=str, na_filter=False, skipinitialspace=True, encoding="utf-8"
        )
        names = _column_names([str(v) for v in header.iloc[0]], origin)
        frame = pd.read_csv(io.BytesIO(data), header=None, dtype=str, skipinitialspace=True, encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataSourceError(_not_utf8(data, origin)) from exc
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except pd.errors.ParserError as exc:
        raise DataSourceError(_unparsable(data, origin, str(exc))) from exc
    frame = frame.iloc[1:].reset_index(drop=True)
    frame.columns = pd.Index(names, dtype=object)
    return frame


def _check_text(data: bytes, origin: str) -> None:
    if data.startswith(_UTF16_BOMS):
        raise DataSourceError(
            f"{origin} is UTF-16 or UTF-32 text (it starts with such a byte-order mark); save it as UTF-8"
        )
    nul = data.find(b"\x00")
    if nul >= 0:
        raise DataSourceError(
            f"{origin} contains a NUL byte ({_where(data, nul)}): it is a binary file or not UTF-8 text"
        )


def _where(data: bytes, offset: int) -> str:
    line = data.count(b"\n", 0, offset) + 1
    return f"line {line}, byte {offset:,}"


def _not_utf8(data: bytes, origin: str) -> str:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return (
            f"{origin} is not UTF-8 text: byte 0x{data[exc.start]:02x} ({_where(data, exc.start)}) "
            "cannot be decoded; save the file as UTF-8 (in Excel: CSV UTF-8)"
        )
    return f"{origin} is not UTF-8 text; save the file as UTF-8 (in Excel: CSV UTF-8)"


def _column_names(raw: list[str], origin: str) -> list[str]:
    """Trimmed header names; a blank one gets a label naming its position."""
    names = [name.strip() or f"(blank header, column {i})" for i, name in enumerate(raw, start=1)]
    repeated = [name for name, count in Counter(names).items() if count > 1]
    if repeated:
        shown = ", ".join(repr(_cut(name)) for name in repeated[:MAX_LINES_REPORTED])
        more = f" and {len(repeated) - MAX_LINES_REPORTED} more" if len(repeated) > MAX_LINES_REPORTED else ""
        raise DataSourceError(
            f"{origin} has a header naming a column more than once: {shown}{more}; each column needs its own name"
        )
    return names


@dataclass
class _Scan:
    """What Python's csv module finds where pandas' parser stopped: physical line numbers."""

    long_rows: list[int] = field(default_factory=list)
    long_count: int = 0
    last_start: int = 1
    complete: bool = True


def _scan(data: bytes, width: int) -> _Scan:
    # Only on the error path: it decodes the whole file. It stops at a field over the csv
    # module's size limit (a process-wide setting we leave alone), so its counts are a floor.
    text = data.decode("utf-8-sig", errors="replace")
    reader = csv.reader(io.StringIO(text, newline=""), skipinitialspace=True)
    scan = _Scan()
    start = 1
    try:
        for fields in reader:
            scan.last_start = start
            if len(fields) > width:
                scan.long_count += 1
                if len(scan.long_rows) < MAX_LINES_REPORTED:
                    scan.long_rows.append(start)
            start = reader.line_num + 1
    except csv.Error:
        scan.complete = False
        scan.last_start = start
    return scan


def _unparsable(data: bytes, origin: str, message: str) -> str:
    long_row = _LONG_ROW.search(message)
    if long_row:
        width, line, seen = (int(g) for g in long_row.groups())
        scan = _scan(data, width)
        lines = scan.long_rows or [line]
        count = max(scan.long_count, len(lines))
        where = (
            f"line{'s' if len(lines) > 1 else ''} {', '.join(map(str, lines))}{', ...' if count > len(lines) else ''}"
        )
        rows = f"{count}{'' if scan.complete else '+'} row(s)"
        return (
            f"{origin}: {rows} with more fields than the {width}-column header ({where}; the first has {seen}): "
            "quote values that contain commas, or fix the header"
        )
    if "EOF inside string" in message:
        line = _scan(data, 1 << 30).last_start
        return f"{origin} is not a readable CSV file: the quoted field of the row starting on line {line} never closes"
    return f"{origin} is not a readable CSV file: {_cut(message.strip(), 200)}"
