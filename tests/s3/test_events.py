"""Parsing S3 notifications and EventBridge events into the objects they announce."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest

from ccml.core.errors import ConfigError
from ccml.core.events import ObjectCreated, parse_object_events
from tests.s3.helpers import AWKWARD_KEY, s3_event, s3_record

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "events"


def eventbridge_event(
    bucket: str, key: str, detail_type: str = "Object Created", **object_fields: Any
) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": detail_type,
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-11-27T12:00:00Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {"version": "0", "bucket": {"name": bucket}, "object": {"key": key, **object_fields}},
    }


def test_every_created_record_of_a_notification_is_returned_in_order() -> None:
    event = s3_event(
        s3_record("ccml-a", "incoming/one.csv", '"e1"'),
        s3_record("ccml-a", "incoming/two.csv", '"e2"', event_name="ObjectCreated:CompleteMultipartUpload"),
        s3_record("ccml-b", "incoming/three.csv", '"e3"', event_name="ObjectCreated:Copy"),
    )

    found = parse_object_events(event)

    assert found == [
        ObjectCreated("ccml-a", "incoming/one.csv", None, "e1"),
        ObjectCreated("ccml-a", "incoming/two.csv", None, "e2"),
        ObjectCreated("ccml-b", "incoming/three.csv", None, "e3"),
    ]


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        ("incoming/my+data%2B1+%C3%A9.csv", "incoming/my data+1 é.csv"),
        ("incoming/100%25+sure%3F.csv", "incoming/100% sure?.csv"),
        ("incoming/plain.csv", "incoming/plain.csv"),
    ],
)
def test_notification_keys_are_url_decoded(encoded: str, decoded: str) -> None:
    record = s3_record("ccml-a", "placeholder", '"e1"')
    record["s3"]["object"]["key"] = encoded

    [found] = parse_object_events(s3_event(record))

    assert found.key == decoded
    assert found.uri == f"s3://ccml-a/{decoded}"


def test_key_encoded_as_s3_does_decodes_back_to_the_stored_key() -> None:
    record = s3_record("ccml-a", AWKWARD_KEY, '"e1"')
    assert record["s3"]["object"]["key"] == quote_plus(AWKWARD_KEY, safe="/") != AWKWARD_KEY

    [found] = parse_object_events(s3_event(record))

    assert found.key == AWKWARD_KEY


def test_eventbridge_object_created_event_is_parsed_with_version_and_etag() -> None:
    event = eventbridge_event("ccml-a", "incoming/new.csv", etag="abc123", **{"version-id": "v-7"})

    assert parse_object_events(event) == [ObjectCreated("ccml-a", "incoming/new.csv", "v-7", "abc123")]


def test_identity_names_the_version_id_when_there_is_one_else_the_unquoted_etag() -> None:
    versioned = ObjectCreated("ccml-a", "incoming/x.csv", "v-7", '"abc"')
    unversioned = ObjectCreated("ccml-a", "incoming/x.csv", None, '"abc"')

    assert versioned.identity == "s3://ccml-a/incoming/x.csv@v-7"
    assert unversioned.identity == "s3://ccml-a/incoming/x.csv@abc"
    assert unversioned.identity == ObjectCreated("ccml-a", "incoming/x.csv", None, "abc").identity


def test_records_other_than_object_created_are_ignored() -> None:
    event = s3_event(
        s3_record("ccml-a", "incoming/gone.csv", '"e1"', event_name="ObjectRemoved:Delete"),
        s3_record("ccml-a", "incoming/new.csv", '"e2"'),
        s3_record("ccml-a", "incoming/back.csv", '"e3"', event_name="ObjectRestore:Completed"),
    )

    assert [obj.key for obj in parse_object_events(event)] == ["incoming/new.csv"]


def test_eventbridge_events_other_than_object_created_are_ignored() -> None:
    assert parse_object_events(eventbridge_event("ccml-a", "incoming/gone.csv", detail_type="Object Deleted")) == []


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"hello": "world"},
        {"Records": None},
        {"Records": [None]},
        {"Records": ["not a record"]},
        {"Records": [{"eventName": "ObjectCreated:Put"}]},
        {"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "ccml-a"}, "object": {}}}]},
        {"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "ccml-a"}, "object": {"key": 5}}}]},
        {"detail-type": "Object Created"},
        {"detail-type": "Object Created", "detail": {"bucket": {"name": "ccml-a"}, "object": {}}},
        {"detail-type": "Object Created", "detail": {"bucket": {"name": "ccml-a"}, "object": {"key": ["x"]}}},
        [],
        "Records",
    ],
    ids=repr,
)
def test_malformed_event_raises_config_error(event: Any) -> None:
    with pytest.raises(ConfigError):
        parse_object_events(event)


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda path: path.name)
def test_example_event_files_announce_the_sample_object(path: Path) -> None:
    [found] = parse_object_events(json.loads(path.read_text("utf-8")))

    assert (found.bucket, found.key) == ("ccml-demo", "incoming/sample.csv")
