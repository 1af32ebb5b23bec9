"""CSV bytes -> a table of text cells: the one parser every data source shares."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from ccml.core.errors import DataSourceError

if TYPE_CHECKING:
    import pandas as pd


def read_csv_text(data: bytes, origin: str) -> pd.DataFrame:
    """Parse CSV bytes keeping every cell as text; validation does the typing.

    An empty file is an empty table, so validation reports it with every missing column.
    """
    import pandas as pd  # here: a server process that only reads models never needs it

    if not data.strip():
        return pd.DataFrame()
    try:
        return pd.read_csv(io.BytesIO(data), dtype=str, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataSourceError(f"{origin} is not a readable CSV file: {exc}") from exc
