"""The CSV contract of ``read_csv_text``: encoding, header rules, ragged rows, bounded errors."""

from __future__ import annotations

import pandas as pd
import pytest

from ccml.core.errors import DataSourceError
from ccml.storage.csv_text import MAX_LINES_REPORTED, read_csv_text

HUGE = 50 * 1024 * 1024
MESSAGE_LIMIT = 4096


def _error(data: bytes) -> str:
    with pytest.raises(DataSourceError) as caught:
        read_csv_text(data, "in.csv")
    message = str(caught.value)
    assert message.startswith("in.csv")
    assert len(message) < MESSAGE_LIMIT
    return message


def test_extra_field_in_the_first_data_row_is_refused_not_shifted() -> None:
    # pandas' default would make column "a" the index and shift every cell one column left.
    message = _error(b"a,b\n1,2,3\n4,5\n")
    assert "line 2" in message
    assert "2-column header" in message
    assert "the first has 3" in message


def test_every_long_row_is_counted_and_the_first_ones_named() -> None:
    rows = b"".join(b"1,2\n" if i % 2 else b"1,2,3\n" for i in range(20))
    message = _error(b"a,b\n" + rows)
    assert "10 row(s)" in message
    named = [2 + 2 * i for i in range(MAX_LINES_REPORTED)]
    assert f"lines {', '.join(map(str, named))}, ..." in message


def test_long_row_line_numbers_are_the_lines_an_editor_shows() -> None:
    # A blank line and a quoted field spanning two lines come before the bad row on line 6.
    message = _error(b'a,b\n1,2\n\n"two\nlines",3\n4,5,6\n')
    assert "line 6;" in message


def test_short_row_has_its_last_cells_missing() -> None:
    frame = read_csv_text(b"a,b,c\n1,2,3\n4\n", "in.csv")
    assert frame.iloc[1].tolist()[0] == "4"
    assert frame.iloc[1, 1:].isna().all()


@pytest.mark.parametrize("header", [b"a,b,a", b"a, b ,b", b'a,"b",b'])
def test_repeated_header_name_is_refused_naming_it(header: bytes) -> None:
    message = _error(header + b"\n1,2,3\n")
    name = "a" if header.startswith(b"a,b,a") else "b"
    assert "more than once" in message
    assert f"'{name}'" in message


def test_huge_repeated_header_name_is_cut_in_the_message() -> None:
    name = b"x" * HUGE
    message = _error(name + b"," + name + b"\n1,2\n")
    assert "more than once" in message
    assert f"{HUGE:,} characters" in message


def test_huge_field_in_a_long_row_gives_a_short_message() -> None:
    message = _error(b"a,b\n" + b"x" * HUGE + b",2,3\n")
    assert "line 2" in message


def test_header_names_are_trimmed_and_blank_ones_labelled() -> None:
    frame = read_csv_text(b" a , b ,\n1,2,3\n", "in.csv")
    assert list(frame.columns) == ["a", "b", "(blank header, column 3)"]
    assert frame.iloc[0].tolist() == ["1", "2", "3"]


def test_header_names_that_look_missing_keep_their_names() -> None:
    frame = read_csv_text(b"NA,null\n,x\n", "in.csv")
    assert list(frame.columns) == ["NA", "null"]
    assert pd.isna(frame.iloc[0, 0])


def test_header_only_file_is_a_table_without_rows() -> None:
    frame = read_csv_text(b"a,b\n", "in.csv")
    assert list(frame.columns) == ["a", "b"]
    assert len(frame) == 0


def test_utf8_byte_order_mark_is_accepted() -> None:
    frame = read_csv_text("\ufeffname,city\nZoë,Kraków\n".encode(), "in.csv")
    assert list(frame.columns) == ["name", "city"]
    assert frame.iloc[0].tolist() == ["Zoë", "Kraków"]


@pytest.mark.parametrize("content", [b"\xef\xbb\xbf", b"\xef\xbb\xbf\n \r\n"])
def test_byte_order_mark_alone_is_an_empty_table(content: bytes) -> None:
    assert read_csv_text(content, "in.csv").empty


def test_latin1_text_is_refused_naming_line_and_byte() -> None:
    message = _error("name,city\nZoë,Kraków\n".encode("latin-1"))
    assert "not UTF-8" in message
    assert "byte 0xeb" in message
    assert "line 2, byte 12" in message


def test_utf16_text_is_refused() -> None:
    assert "UTF-16" in _error("a,b\n1,2\n".encode("utf-16"))


def test_nul_byte_is_refused_naming_its_line() -> None:
    assert "NUL byte (line 3" in _error(b"a,b\n1,2\n3,\x004\n")


def test_quote_that_never_closes_names_the_row_where_it_opens() -> None:
    message = _error(b'a,b\n1,2\n"never closed,3\n4,5\n')
    assert "never closes" in message
    assert "line 3" in message


def test_other_delimiter_reads_as_one_column() -> None:
    frame = read_csv_text(b"a;b\n1;2\n", "in.csv")
    assert list(frame.columns) == ["a;b"]
