"""A logs drop: a batch folder of activity-log files under ``<data prefix>logs/``, trained when its marker lands.

``incoming/logs/<batch>/`` holds the log files (``*.csv`` or ``*.parquet``), ``labels.csv`` and,
optionally, ``calendar.csv`` and ``enrollments.csv``; the ``_READY`` marker, uploaded last, says
the batch is complete. Only the marker's event trains (the other objects' events are skipped):
one version per course day, the marker's ``{"days": [7, 14]}`` or, for an empty marker, every
horizon of the activity schema, each gated against and promoted to that horizon's ``day-D``
alias, each claimed on its own (marker identity and day), so a retry trains only what is left.
"""

from __future__ import annotations

import glob
import hashlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ccml.activity.inputs import activity_schema, log_source
from ccml.activity.scoring import horizon_alias
from ccml.core.activity import ActivitySchema
from ccml.core.contracts import DataSource
from ccml.core.errors import DataSourceError, EventError
from ccml.core.events import ObjectCreated, Plan, Training
from ccml.core.settings import Settings
from ccml.core.types import Dataset
from ccml.storage.log_files import s3_files
from ccml.storage.s3 import make_client

if TYPE_CHECKING:  # activity never imports the training flow (it reaches serving): mypy checks the protocol
    from mypy_boto3_s3 import S3Client

    from ccml.models.training.event_retraining import Drop

LOGS_FOLDER: Final = "logs/"
MARKER: Final = "_READY"
WAITING: Final = f"part of a logs batch: waiting for its {MARKER} marker"
COMPANIONS: Final = ("labels", "calendar", "enrollments")
LOG_SUFFIXES: Final = (".csv", ".parquet")
# A marker holds at most a list of days: anything larger is not one.
MARKER_MAX_BYTES: Final = 64 * 1024


class _MarkerBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    days: Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=1)]


def marker_days(body: bytes, schema: ActivitySchema, uri: str) -> list[int]:
    """The course days a marker asks for: its ``days``, or every horizon of ``schema`` when it is empty.

    Raises:
        EventError: the body is neither empty nor ``{"days": [...]}`` of days within the course.
    """
    if not body.strip():
        return sorted(schema.horizons)
    try:
        days = _MarkerBody.model_validate_json(body).days
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors())
        raise EventError(
            f'logs marker {uri}: {problems} (a marker is empty, or JSON like {{"days": [7, 14]}})'
        ) from exc
    late = sorted({day for day in days if day > schema.logs.course_days})
    if late:
        raise EventError(f"logs marker {uri}: days {late} lie past the course's {schema.logs.course_days} days")
    return sorted(set(days))


@dataclass(frozen=True)
class BatchFiles:
    """A batch's files on the local disk: a glob of its logs, its companions by name, and their content's hash."""

    logs: str
    companions: dict[str, str]
    fingerprint: str


def fetch_batch(
    client: Callable[[], S3Client], bucket: str, prefix: str, directory: Path, *, max_bytes: int, labels: bool
) -> BatchFiles:
    """Download the batch under ``s3://bucket/prefix`` into ``directory``, its logs apart from its companions.

    Raises:
        DataSourceError: the batch holds no log file, lacks ``labels.csv`` (``labels``: the schema
            needs the file) or has one it should not, or holds objects that are none of these.
    """
    uri = f"s3://{bucket}/{prefix}"
    paths = s3_files(f"s3://{bucket}/{glob.escape(prefix)}*", directory / "s3", max_bytes=max_bytes, client=client)
    base = directory.joinpath("s3", bucket, *prefix.rstrip("/").split("/"))
    logs = directory / "logs"
    logs.mkdir()
    digest = hashlib.sha256()
    companions: dict[str, str] = {}
    unexpected: list[str] = []
    for path in paths:
        name = path.relative_to(base).as_posix()
        stem, suffix = Path(name).stem.lower(), Path(name).suffix.lower()
        if name == MARKER:
            continue
        if "/" in name or suffix not in LOG_SUFFIXES or (stem in COMPANIONS and suffix != ".csv"):
            unexpected.append(name)
            continue
        with path.open("rb") as handle:
            digest.update(f"{name}\0{hashlib.file_digest(handle, 'sha256').hexdigest()}\n".encode())
        if stem in COMPANIONS:
            companions[stem] = str(path)
        else:
            path.rename(logs / name)
    if unexpected:
        raise DataSourceError(
            f"logs batch {uri} holds objects that are neither log files ({', '.join(LOG_SUFFIXES)}) nor "
            f"{', '.join(c + '.csv' for c in COMPANIONS)}: {', '.join(sorted(unexpected)[:10])}"
        )
    if not any(logs.iterdir()):
        raise DataSourceError(f"logs batch {uri} holds no log file ({', '.join(LOG_SUFFIXES)})")
    if labels != ("labels" in companions):
        needs = "labels from a file: upload labels.csv" if labels else "labels from the log: remove labels.csv"
        raise DataSourceError(f"logs batch {uri}: the activity schema takes {needs}")
    return BatchFiles(str(Path(glob.escape(str(logs))) / "*"), companions, digest.hexdigest())


class LogsBatchDay(DataSource):
    """The labelled feature table of one logs batch as of one course day, as a training ``DataSource``."""

    def __init__(
        self,
        settings: Settings,
        schema: ActivitySchema,
        marker: ObjectCreated,
        prefix: str,
        day: int,
        client: Callable[[], S3Client] = make_client,
    ) -> None:
        self.settings = settings
        self.schema = schema
        self.marker = marker
        self.prefix = prefix
        self.day = day
        self.client = client

    @property
    def identity(self) -> str:
        """The marker's exact version and the day: the claim of this day's training."""
        return f"{self.marker.identity}#day={self.day}"

    def describe(self) -> dict[str, str]:
        """The batch's location, its marker and the day (safe to log)."""
        location = f"s3://{self.marker.bucket}/{self.prefix}"
        return {"backend": "logs-batch", "location": location, "marker": self.marker.identity, "day": str(self.day)}

    def _load(self) -> Dataset:
        # Each day downloads the batch again: a work directory lives only as long as one load, so
        # nothing is left on a Lambda's /tmp (shared by its later invocations) whatever fails.
        with tempfile.TemporaryDirectory(prefix="ccml-logs-batch-") as work:
            files = fetch_batch(
                self.client,
                self.marker.bucket,
                self.prefix,
                Path(work),
                max_bytes=self.settings.max_log_bytes,
                labels=self.schema.labels.source == "file",
            )
            found = files.companions.get
            source = log_source(
                self.settings,
                self.schema,
                files.logs,
                [self.day],
                labels=found("labels"),
                calendar=found("calendar"),
                enrollments=found("enrollments"),
            )
            frame = source.load().frame
        return Dataset(
            frame=frame,
            fingerprint=hashlib.sha256(f"{files.fingerprint}\0day={self.day}".encode()).hexdigest(),
            source=self.describe(),
            identity=self.identity,
        )


class LogsDrop:
    """Logs batches under ``prefix`` (``incoming/logs/``): a marker's event trains its days, the rest wait.

    A ``Drop`` (``ccml.models.training.event_retraining``), by its shape.
    """

    def __init__(self, settings: Settings, prefix: str, client: Callable[[], S3Client] = make_client) -> None:
        self.settings = settings
        self.prefix = prefix
        self.client = client
        self._schema: ActivitySchema | None = None

    def schema(self) -> ActivitySchema:
        """The activity schema (``CCML_SCHEMA`` or the built-in one), read at the first marker, not at start-up:
        a deployment that only trains tables may configure a table schema."""
        if self._schema is None:
            self._schema = activity_schema(self.settings)
        return self._schema

    def plan(self, obj: ObjectCreated) -> Plan | None:
        """None outside ``prefix``; a skip for a batch's other objects; for a marker, one training per day."""
        if not obj.key.startswith(self.prefix):
            return None
        batch, slash, name = obj.key[len(self.prefix) :].partition("/")
        if not batch or not slash:
            return Plan(skipped=f"not in a logs batch folder: {self.prefix}<batch>/..., completed by {MARKER}")
        if name != MARKER:
            return Plan(skipped=WAITING)
        schema = self.schema()
        days = marker_days(self.read_marker(obj), schema, obj.uri)
        features = schema.feature_schema()
        prefix = f"{self.prefix}{batch}/"
        trainings = []
        for day in days:
            source = LogsBatchDay(self.settings, schema, obj, prefix, day, self.client)
            alias = horizon_alias(day)
            summary: dict[str, Any] = {"batch": batch, "day": day, "alias": alias}
            trainings.append(Training(source.identity, source, features, alias, summary))
        return Plan(tuple(trainings))

    def read_marker(self, obj: ObjectCreated) -> bytes:
        """The marker's body, of the version its event announced where the bucket keeps versions.

        Raises:
            DataSourceError: it cannot be read.
            EventError: it is larger than a marker can be.
        """
        pinned: dict[str, Any] = {"VersionId": obj.version_id} if obj.version_id else {}
        try:
            # No Range request: S3 answers one on an empty object (the usual marker) with 416.
            response = self.client().get_object(Bucket=obj.bucket, Key=obj.key, **pinned)
        except ClientError as exc:
            raise DataSourceError(f"cannot read logs marker {obj.uri}: {exc}") from exc
        body = response["Body"]
        if int(response.get("ContentLength", 0)) > MARKER_MAX_BYTES:
            body.close()
            raise EventError(
                f"logs marker {obj.uri} holds {response['ContentLength']} bytes: a marker is empty or "
                f'{{"days": [...]}} (at most {MARKER_MAX_BYTES} bytes)'
            )
        return body.read()


def build_logs_drop(settings: Settings, data_prefix: str) -> Drop:
    """Logs batches under ``<data_prefix>logs/`` (``DROPS``'s ``logs`` entry)."""
    return LogsDrop(settings, data_prefix + LOGS_FOLDER)
