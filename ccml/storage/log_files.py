"""Activity-log files named by a glob, on the local disk or in S3, as local paths an engine can read.

DuckDB's own S3 support (the ``httpfs`` extension) downloads itself at first use, which a closed
network or a Lambda cannot do; so S3 objects are listed and fetched with boto3 (the client every
other S3 backend uses) into a work directory, keeping their key's path so a pattern on the file
name still finds the course.
"""

from __future__ import annotations

import fnmatch
import glob
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ccml.core.errors import DataSourceError
from ccml.storage.s3 import make_client, parse_s3_uri

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_WILDCARDS = "*?["


def is_s3(location: str) -> bool:
    """Whether ``location`` is an ``s3://`` URI."""
    return location.lower().startswith("s3://")


def local_files(pattern: str) -> list[Path]:
    """The regular files a local path or glob names, sorted; ``DataSourceError`` when none."""
    paths = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
    if not paths:
        raise DataSourceError(f"no log files match {pattern}")
    return paths


def s3_files(
    location: str, directory: Path, *, max_bytes: int, client: Callable[[], S3Client] = make_client
) -> list[Path]:
    """Download the objects an ``s3://bucket/prefix*`` glob names into ``directory``.

    Raises:
        DataSourceError: nothing matches, or the matches hold more than ``max_bytes`` in all.
    """
    bucket, pattern = parse_s3_uri(location)
    cut = min((pattern.find(c) for c in _WILDCARDS if c in pattern), default=len(pattern))
    prefix = pattern[:cut]
    s3 = client()
    matched: list[tuple[str, int]] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            key = item["Key"]
            if (key == pattern or fnmatch.fnmatchcase(key, pattern)) and not key.endswith("/"):
                matched.append((key, int(item.get("Size", 0))))
    if not matched:
        raise DataSourceError(f"no log objects match {location}")
    total = sum(size for _, size in matched)
    if total > max_bytes:
        raise DataSourceError(
            f"{len(matched)} log objects under {location} hold {total} bytes, over the limit of {max_bytes}"
        )
    paths = []
    for key, _ in sorted(matched):
        target = directory.joinpath(bucket, *key.split("/"))
        if ".." in key.split("/"):
            raise DataSourceError(f"refused object key {key!r}: it climbs out of its prefix")
        target.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, key, str(target))
        paths.append(target)
    return paths


def fetch_files(location: str, directory: Path, *, max_bytes: int) -> list[Path]:
    """Local paths for the files ``location`` names (a local glob, or an S3 glob fetched into ``directory``)."""
    if is_s3(location):
        return s3_files(location, directory, max_bytes=max_bytes)
    return local_files(location)
