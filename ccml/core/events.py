"""Parse the events that announce new training data: S3 notifications and EventBridge."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from ccml.core.errors import ConfigError


@dataclass(frozen=True)
class ObjectCreated:
    """One object that landed in a bucket."""

    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def identity(self) -> str:
        """Names this exact object version: the idempotency key of its retraining."""
        return f"{self.uri}@{self.version_id or (self.etag or '').strip(chr(34))}"


def _from_s3_record(record: dict[str, Any]) -> ObjectCreated | None:
    if not str(record.get("eventName", "")).startswith("ObjectCreated"):
        return None
    s3 = record["s3"]
    obj = s3["object"]
    # Keys in S3 notifications are URL-encoded, with '+' for a space.
    return ObjectCreated(s3["bucket"]["name"], unquote_plus(obj["key"]), obj.get("versionId"), obj.get("eTag"))


def _from_eventbridge(event: dict[str, Any]) -> ObjectCreated | None:
    if event.get("detail-type") != "Object Created":
        return None
    detail = event["detail"]
    obj = detail["object"]
    # EventBridge carries the key as stored (not URL-encoded).
    return ObjectCreated(detail["bucket"]["name"], obj["key"], obj.get("version-id"), obj.get("etag"))


def parse_object_events(event: dict[str, Any]) -> list[ObjectCreated]:
    """Every created object an event announces (all records, not only the first)."""
    try:
        if "Records" in event:
            found = [_from_s3_record(record) for record in event["Records"]]
        elif event.get("source") == "aws.s3" or "detail-type" in event:
            found = [_from_eventbridge(event)]
        else:
            raise ConfigError("not an S3 notification or EventBridge 'Object Created' event")
    except KeyError as exc:
        raise ConfigError(f"malformed S3 event: missing {exc}") from exc
    except (TypeError, AttributeError) as exc:  # a list, a string or null where an object belongs
        raise ConfigError(f"malformed S3 event: {exc}") from exc
    created = [item for item in found if item is not None]
    for item in created:
        if not (isinstance(item.bucket, str) and isinstance(item.key, str)) or not all(
            value is None or isinstance(value, str) for value in (item.version_id, item.etag)
        ):
            raise ConfigError(f"malformed S3 event: bucket, key, version id and ETag must be strings in {item}")
    return created
