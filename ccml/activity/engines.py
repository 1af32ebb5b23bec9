"""The engines that run the aggregation SQL: embedded DuckDB (the default) and Apache Spark.

An engine reads the log files (CSV or Parquet, local paths: ``ccml.activity.inputs`` fetches S3
objects first), exposes them as ``ccml_logs`` with a ``ccml_file`` column, materializes
``ccml_events`` and answers queries as pandas frames. Spark is an optional extra
(``pip install 'ccml[spark]'``); its results are collected as rows, not through ``toPandas``
(which needs pandas versions Spark has not caught up with).
"""

from __future__ import annotations

import contextlib
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import structlog

from ccml.activity.sql import DUCKDB, SPARK, Dialect
from ccml.core.errors import ConfigError, DataSourceError

log = structlog.get_logger(__name__)

FileFormat = Literal["csv", "parquet"]


def file_format(paths: Sequence[Path]) -> FileFormat:
    """``parquet`` when every path ends in ``.parquet``, ``csv`` when none does; a mix is an error."""
    parquet = {p.suffix.lower() == ".parquet" for p in paths}
    if len(parquet) > 1:
        raise DataSourceError("the log files mix Parquet and CSV: give one format per run")
    return "parquet" if parquet == {True} else "csv"


class Engine(ABC):
    """Runs ccml's SQL over one log."""

    name: str
    dialect: Dialect

    @abstractmethod
    def register_logs(self, paths: Sequence[Path]) -> None:
        """Expose ``paths`` (one format) as ``ccml_logs``, every column as read, plus ``ccml_file``."""

    @abstractmethod
    def register_frame(self, name: str, frame: pd.DataFrame) -> None:
        """Expose a small pandas frame (a course calendar) as relation ``name``."""

    @abstractmethod
    def materialize(self, name: str, sql: str) -> None:
        """Store the result of ``sql`` as relation ``name`` (computed once, read by later queries)."""

    @abstractmethod
    def query(self, sql: str) -> pd.DataFrame:
        """The result of ``sql``."""

    def close(self) -> None:  # noqa: B027 - an engine without resources needs no close
        """Release the engine's resources."""


class DuckDBEngine(Engine):
    """Embedded DuckDB: in-process, on all cores, spilling to disk past its memory limit."""

    name = "duckdb"
    dialect = DUCKDB

    def __init__(self, memory_limit: str | None = None, threads: int | None = None) -> None:
        import duckdb

        self._duckdb = duckdb
        # Past its memory limit DuckDB spills to disk: to the temporary directory, since the
        # working directory may be read-only (a Lambda's is).
        config: dict[str, Any] = {"temp_directory": str(Path(tempfile.gettempdir()) / "ccml-duckdb")}
        if memory_limit:
            config["memory_limit"] = memory_limit
        if threads:
            config["threads"] = threads
        self._con = duckdb.connect(config=config)

    def register_logs(self, paths: Sequence[Path]) -> None:
        """Expose the files via ``read_parquet``, or ``read_csv`` with every column as text (as validation needs it)."""
        listed = "[" + ", ".join(DUCKDB.literal(str(p)) for p in paths) + "]"
        if file_format(paths) == "parquet":
            reader = f"read_parquet({listed}, filename = true)"
        else:
            reader = f"read_csv({listed}, header = true, all_varchar = true, filename = true)"
        self._execute(f"CREATE OR REPLACE TEMP VIEW ccml_logs AS SELECT *, filename AS ccml_file FROM {reader}")

    def register_frame(self, name: str, frame: pd.DataFrame) -> None:
        """Copy ``frame`` into a temporary table."""
        self._con.register("ccml_frame_input", frame)
        self._execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM ccml_frame_input")
        self._con.unregister("ccml_frame_input")

    def materialize(self, name: str, sql: str) -> None:
        """A temporary table."""
        self._execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")

    def query(self, sql: str) -> pd.DataFrame:
        """The result as a pandas frame."""
        with self._errors():
            frame: pd.DataFrame = self._con.sql(sql).df()
        return frame

    def close(self) -> None:
        """Close the connection."""
        self._con.close()

    def _execute(self, sql: str) -> None:
        with self._errors():
            self._con.execute(sql)

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except self._duckdb.Error as exc:
            raise DataSourceError(f"DuckDB cannot read the log: {str(exc)[:500]}") from exc


class SparkEngine(Engine):
    """Apache Spark SQL: ``local[*]`` on one machine, or a cluster (``spark.master`` from settings)."""

    name = "spark"
    dialect = SPARK

    def __init__(self, master: str = "local[*]", app_name: str = "ccml", config: dict[str, str] | None = None) -> None:
        try:
            from pyspark.sql import SparkSession
        except ImportError as exc:
            raise ConfigError("the spark engine needs the spark extra: pip install 'ccml[spark]'") from exc
        builder = SparkSession.builder.master(master).appName(app_name)
        # A test or a laptop: one shuffle partition per core beats the 200 of a cluster default.
        defaults = {
            "spark.sql.shuffle.partitions": "8",
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.sql.ansi.enabled": "false",
        }
        for key, value in {**defaults, **(config or {})}.items():
            builder = builder.config(key, value)
        self._spark = builder.getOrCreate()
        self._spark.sparkContext.setLogLevel("ERROR")
        self._cached: list[str] = []

    def register_logs(self, paths: Sequence[Path]) -> None:
        """Read the files with Spark's readers (CSV cells as strings) and add the source file's path."""
        from pyspark.sql.functions import input_file_name, regexp_replace

        self.close()  # a cached ccml_events of an earlier log would be re-planned over this one
        names = [str(p) for p in paths]
        reader = self._spark.read
        frame = reader.parquet(*names) if file_format(paths) == "parquet" else reader.option("header", True).csv(names)
        # Spark names files as URIs (file:///...); the declaration's pattern is matched on the path.
        frame = frame.withColumn("ccml_file", regexp_replace(input_file_name(), "^file:(//)?", ""))
        frame.createOrReplaceTempView("ccml_logs")

    def register_frame(self, name: str, frame: pd.DataFrame) -> None:
        """Build a Spark frame from the rows (no pandas conversion on Spark's side)."""
        rows = [tuple(r) for r in frame.itertuples(index=False)]
        self._spark.createDataFrame(rows, schema=list(frame.columns)).createOrReplaceTempView(name)

    def materialize(self, name: str, sql: str) -> None:
        """``CACHE TABLE name AS sql``."""
        self._spark.sql(f"CACHE TABLE {name} AS {sql}")
        self._cached.append(name)

    def query(self, sql: str) -> pd.DataFrame:
        """Collect the rows into a pandas frame."""
        result = self._spark.sql(sql)
        rows = result.collect()
        return pd.DataFrame([tuple(r) for r in rows], columns=result.columns)

    def close(self) -> None:
        """Drop the cached tables (the session stays for the next run in this process)."""
        for name in self._cached:
            self._spark.sql(f"UNCACHE TABLE IF EXISTS {name}")
            self._spark.catalog.dropTempView(name)
        self._cached.clear()


def build_engine(name: str, *, spark_master: str = "local[*]", memory_limit: str | None = None) -> Engine:
    """The engine ``name`` names: ``duckdb`` or ``spark``."""
    if name == "duckdb":
        return DuckDBEngine(memory_limit=memory_limit)
    if name == "spark":
        return SparkEngine(master=spark_master)
    raise ConfigError(f"unknown aggregation engine {name!r}: use duckdb or spark")
