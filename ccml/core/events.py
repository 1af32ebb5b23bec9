"""Parse the events that announce new training data, whichever way S3 delivered them.

Accepted, unwrapped recursively (at most ``MAX_ENVELOPES`` SQS/SNS envelopes deep):

- an S3 event notification, ``{"Records": [{"eventSource": "aws:s3", ...}]}``: every record;
- an EventBridge event from S3 (``"source": "aws.s3"``, ``"detail-type": "Object Created"``);
- an SQS batch, ``{"Records": [{"eventSource": "aws:sqs", "body": "<JSON>"}]}``: each body is parsed again;
- an SNS delivery, ``{"Records": [{"EventSource": "aws:sns", "Sns": {"Message": "<JSON>"}}]}``, and the SNS
  notification document (``{"Type": "Notification", "Message": "<JSON>"}``) that SQS receives from SNS
  when raw message delivery is off;
- S3's ``s3:TestEvent`` (sent when a notification to SQS or SNS is configured), and records or
  EventBridge events of other kinds (``ObjectRemoved:*``, ...): acknowledged as ``ignored``.

Anything else raises ``EventError`` naming where in the document it went wrong: an event that
carries nothing recognisable is never acknowledged as a success.
"""

from __future__ import annotations

import json
import reprlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote_plus

from ccml.core.errors import EventError

if TYPE_CHECKING:
    from ccml.core.contracts import DataSource
    from ccml.core.schema import FeatureSchema

# S3 -> SNS -> SQS -> Lambda, the deepest set-up AWS documents, is two envelopes; one more is slack.
MAX_ENVELOPES: Final = 3
# Versioning-suspended buckets give every overwrite the version id "null": it names no version.
_NO_VERSION: Final = "null"


@dataclass(frozen=True)
class ObjectCreated:
    """One object version that landed in a bucket."""

    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None

    @property
    def uri(self) -> str:
        """The object as an ``s3://bucket/key`` URI (without its version)."""
        return f"s3://{self.bucket}/{self.key}"

    @property
    def identity(self) -> str:
        """Names this exact object version: the idempotency key of its retraining.

        The version id (versioned buckets) or else the ETag, both of which S3 notifications and
        EventBridge carry alike: the same upload announced twice, by either route, is one claim.
        """
        return f"{self.uri}@{self.version_id or (self.etag or '').strip(chr(34))}"


@dataclass(frozen=True)
class IgnoredMessage:
    """A recognised message that announces no new object (a test event, a deletion, ...)."""

    kind: str
    path: str
    bucket: str | None = None
    key: str | None = None

    def summary(self) -> dict[str, str | None]:
        """Return the message's fields for a log line (None where the message did not carry them)."""
        return {"kind": self.kind, "path": self.path, "bucket": self.bucket, "key": self.key}


@dataclass(frozen=True)
class ParsedEvent:
    """What one event announces: never both empty (an event that announces nothing is refused)."""

    objects: tuple[ObjectCreated, ...]
    ignored: tuple[IgnoredMessage, ...]


@dataclass(frozen=True)
class Training:
    """One training an announced object asks for, done at most once per ``identity`` (the key of its claim).

    ``schema`` and ``alias`` replace the table workflow's own where given (a horizon's feature
    table, gated against and promoted to ``day-D``); ``summary`` is what its result names besides
    the object (a batch, a day).
    """

    identity: str
    source: DataSource
    schema: FeatureSchema | None = None
    alias: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    """What an announced object asks for: trainings, or the reason it trains nothing."""

    trainings: tuple[Training, ...] = ()
    skipped: str | None = None


@dataclass
class _Found:
    objects: list[ObjectCreated]
    ignored: list[IgnoredMessage]


def _malformed(path: str, problem: str) -> EventError:
    return EventError(f"malformed S3 event at {path}: {problem}")


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _mapping(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _malformed(path, f"expected a JSON object, got {_kind(value)}")
    return value


def _member(mapping: dict[str, Any], name: str, path: str) -> dict[str, Any]:
    if name not in mapping:
        raise _malformed(path, f"missing {name!r}")
    return _mapping(mapping[name], f"{path}.{name}")


def _text(mapping: dict[str, Any], name: str, path: str) -> str:
    if name not in mapping:
        raise _malformed(path, f"missing {name!r}")
    value = mapping[name]
    if not isinstance(value, str) or not value:
        raise _malformed(f"{path}.{name}", f"expected a non-empty string, got {reprlib.repr(value)}")
    return value


def _optional_text(mapping: dict[str, Any], name: str, path: str) -> str | None:
    value = mapping.get(name)
    if value is not None and not isinstance(value, str):
        raise _malformed(f"{path}.{name}", f"expected a string, got {reprlib.repr(value)}")
    return value or None


def _lenient(mapping: dict[str, Any], *names: str) -> str | None:
    """A string nested under ``names``, or None: for the log line of a message that is ignored."""
    value: Any = mapping
    for name in names:
        value = value.get(name) if isinstance(value, dict) else None
    return value if isinstance(value, str) else None


def _created(bucket: str, key: str, version_id: str | None, etag: str | None, path: str) -> ObjectCreated:
    version_id = None if version_id == _NO_VERSION else version_id
    if not (version_id or (etag or "").strip('"')):
        # Without either, every upload to the key would share one claim and only the first would ever train.
        raise _malformed(path, f"s3://{bucket}/{key} carries neither a version id nor an ETag")
    return ObjectCreated(bucket, key, version_id, etag)


def _unwrap(payload: Any, path: str, envelopes: int, found: _Found) -> None:
    """Parse ``payload``, the JSON text an SQS body or SNS message carries, as one more event."""
    if envelopes > MAX_ENVELOPES:
        raise _malformed(path, f"nested deeper than {MAX_ENVELOPES} SQS/SNS envelopes")
    if not isinstance(payload, str):
        raise _malformed(path, f"expected JSON text, got {_kind(payload)}")
    try:
        document = json.loads(payload)
    except (ValueError, RecursionError) as exc:  # RecursionError: nesting deeper than the parser's stack
        raise _malformed(path, f"not JSON ({exc})") from exc
    _document(document, path, envelopes, found)


def _document(document: Any, path: str, envelopes: int, found: _Found) -> None:
    event = _mapping(document, path)
    if "Records" in event:
        records = event["Records"]
        if not isinstance(records, list) or not records:
            raise _malformed(f"{path}.Records", f"expected a non-empty list, got {reprlib.repr(records)}")
        for index, record in enumerate(records):
            _record(record, f"{path}.Records[{index}]", envelopes, found)
    elif event.get("source") == "aws.s3":
        _eventbridge(event, path, found)
    elif "detail-type" in event:
        raise _malformed(path, f"an EventBridge event from {reprlib.repr(event.get('source'))}, not from S3 ('aws.s3')")
    elif event.get("Event") == "s3:TestEvent":
        found.ignored.append(IgnoredMessage("s3:TestEvent", path, _lenient(event, "Bucket")))
    elif "Type" in event and "TopicArn" in event:
        if event["Type"] != "Notification":
            # e.g. a SubscriptionConfirmation, which someone must confirm (its SubscribeURL) for S3's messages to flow.
            raise _malformed(path, f"an SNS {reprlib.repr(event['Type'])} message carries no S3 notification")
        _unwrap(event.get("Message"), f"{path}.Message", envelopes + 1, found)
    else:
        raise _malformed(
            path,
            "not an S3 notification, an EventBridge event from S3, an SQS message or an SNS notification "
            f"(keys: {reprlib.repr(sorted(event))})",
        )


def _record(value: Any, path: str, envelopes: int, found: _Found) -> None:
    record = _mapping(value, path)
    # SQS and S3 records spell it eventSource, SNS records EventSource.
    source = record.get("eventSource", record.get("EventSource"))
    if source == "aws:sqs":
        _unwrap(record.get("body"), f"{path}.body", envelopes + 1, found)
    elif source == "aws:sns":
        sns = _member(record, "Sns", path)
        if sns.get("Type", "Notification") != "Notification":
            raise _malformed(f"{path}.Sns", f"an SNS {reprlib.repr(sns['Type'])} message carries no S3 notification")
        _unwrap(sns.get("Message"), f"{path}.Sns.Message", envelopes + 1, found)
    elif source == "aws:s3" or (source is None and ("s3" in record or "eventName" in record)):
        _s3_record(record, path, found)
    else:
        raise _malformed(path, f"a record from {reprlib.repr(source)}: expected aws:s3, aws:sqs or aws:sns")


def _s3_record(record: dict[str, Any], path: str, found: _Found) -> None:
    name = _text(record, "eventName", path)
    if not name.startswith("ObjectCreated"):
        found.ignored.append(IgnoredMessage(name, path, _lenient(record, "s3", "bucket", "name"), _key(record)))
        return
    s3 = _member(record, "s3", path)
    bucket = _text(_member(s3, "bucket", f"{path}.s3"), "name", f"{path}.s3.bucket")
    obj = _member(s3, "object", f"{path}.s3")
    where = f"{path}.s3.object"
    key = _text(obj, "key", where)
    # Keys in S3 notifications are URL-encoded, with '+' for a space.
    version_id, etag = _optional_text(obj, "versionId", where), _optional_text(obj, "eTag", where)
    found.objects.append(_created(bucket, unquote_plus(key), version_id, etag, path))


def _key(record: dict[str, Any]) -> str | None:
    key = _lenient(record, "s3", "object", "key")
    return None if key is None else unquote_plus(key)


def _eventbridge(event: dict[str, Any], path: str, found: _Found) -> None:
    detail_type = _text(event, "detail-type", path)
    if detail_type != "Object Created":
        found.ignored.append(
            IgnoredMessage(
                detail_type,
                path,
                _lenient(event, "detail", "bucket", "name"),
                _lenient(event, "detail", "object", "key"),
            )
        )
        return
    detail = _member(event, "detail", path)
    bucket = _text(_member(detail, "bucket", f"{path}.detail"), "name", f"{path}.detail.bucket")
    obj = _member(detail, "object", f"{path}.detail")
    where = f"{path}.detail.object"
    key = _text(obj, "key", where)
    # EventBridge carries the key as stored (not URL-encoded).
    version_id, etag = _optional_text(obj, "version-id", where), _optional_text(obj, "etag", where)
    found.objects.append(_created(bucket, key, version_id, etag, path))


def parse_event(event: Any) -> ParsedEvent:
    """Every created object an event announces, and every recognised message it ignores.

    The whole event is parsed before anything acts on it, so a malformed record anywhere refuses
    the event before any of its objects trains.
    """
    found = _Found([], [])
    _document(event, "$", 0, found)
    return ParsedEvent(tuple(found.objects), tuple(found.ignored))
