"""Parsing the events that announce objects: S3 notifications, EventBridge events, both wrapped in
SQS and SNS messages, S3's test event, and everything that must be refused."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest

from ccml.core.errors import EventError
from ccml.core.events import MAX_ENVELOPES, IgnoredMessage, ObjectCreated, parse_event
from tests.s3.envelopes import (
    WRAPPERS,
    eventbridge_event,
    s3_test_event,
    sns_notification,
    sns_record,
    sqs_event,
    sqs_record,
    via_sqs,
)
from tests.s3.helpers import AWKWARD_KEY, s3_event, s3_record

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "events"
Wrapper = Callable[[dict[str, Any]], dict[str, Any]]


def objects(event: Any) -> list[ObjectCreated]:
    return list(parse_event(event).objects)


# -- S3 notifications and EventBridge ------------------------------------------------------
def test_every_created_record_of_a_notification_is_returned_in_order() -> None:
    event = s3_event(
        s3_record("ccml-a", "incoming/one.csv", '"e1"'),
        s3_record("ccml-a", "incoming/two.csv", '"e2"', event_name="ObjectCreated:CompleteMultipartUpload"),
        s3_record("ccml-b", "incoming/three.csv", '"e3"', event_name="ObjectCreated:Copy"),
    )

    assert objects(event) == [
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

    [found] = objects(s3_event(record))

    assert found.key == decoded
    assert found.uri == f"s3://ccml-a/{decoded}"


def test_key_encoded_as_s3_does_decodes_back_to_the_stored_key() -> None:
    record = s3_record("ccml-a", AWKWARD_KEY, '"e1"')
    assert record["s3"]["object"]["key"] == quote_plus(AWKWARD_KEY, safe="/") != AWKWARD_KEY

    [found] = objects(s3_event(record))

    assert found.key == AWKWARD_KEY


def test_eventbridge_object_created_event_is_parsed_with_version_and_etag() -> None:
    event = eventbridge_event("ccml-a", "incoming/new.csv", etag="abc123", **{"version-id": "v-7"})

    assert objects(event) == [ObjectCreated("ccml-a", "incoming/new.csv", "v-7", "abc123")]


def test_records_and_eventbridge_events_other_than_object_created_are_ignored_by_name() -> None:
    event = s3_event(
        s3_record("ccml-a", "incoming/gone+1.csv", '"e1"', event_name="ObjectRemoved:Delete"),
        s3_record("ccml-a", "incoming/new.csv", '"e2"'),
        s3_record("ccml-a", "incoming/back.csv", '"e3"', event_name="ObjectRestore:Completed"),
    )

    parsed = parse_event(event)

    assert [obj.key for obj in parsed.objects] == ["incoming/new.csv"]
    assert parsed.ignored == (
        IgnoredMessage("ObjectRemoved:Delete", "$.Records[0]", "ccml-a", "incoming/gone+1.csv"),
        IgnoredMessage("ObjectRestore:Completed", "$.Records[2]", "ccml-a", "incoming/back.csv"),
    )
    deleted = parse_event(eventbridge_event("ccml-a", "incoming/gone.csv", detail_type="Object Deleted"))
    assert deleted.objects == ()
    assert deleted.ignored == (IgnoredMessage("Object Deleted", "$", "ccml-a", "incoming/gone.csv"),)


# -- claim identity --------------------------------------------------------------------------
def test_identity_names_the_version_id_when_there_is_one_else_the_unquoted_etag() -> None:
    versioned = ObjectCreated("ccml-a", "incoming/x.csv", "v-7", '"abc"')
    unversioned = ObjectCreated("ccml-a", "incoming/x.csv", None, '"abc"')

    assert versioned.identity == "s3://ccml-a/incoming/x.csv@v-7"
    assert unversioned.identity == "s3://ccml-a/incoming/x.csv@abc"
    assert unversioned.identity == ObjectCreated("ccml-a", "incoming/x.csv", None, "abc").identity


@pytest.mark.parametrize("version", [None, "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY"])
def test_one_upload_announced_by_s3_and_by_eventbridge_has_one_identity(version: str | None) -> None:
    record = s3_record("ccml-a", AWKWARD_KEY, '"e1"')
    fields: dict[str, Any] = {"etag": "e1"}
    if version is not None:
        record["s3"]["object"]["versionId"] = version
        fields["version-id"] = version

    [notified] = objects(s3_event(record))
    [bridged] = objects(eventbridge_event("ccml-a", AWKWARD_KEY, **fields))

    assert notified.identity == bridged.identity


def test_two_uploads_to_one_key_have_two_identities() -> None:
    first, second = s3_record("ccml-a", "incoming/x.csv", '"e1"'), s3_record("ccml-a", "incoming/x.csv", '"e2"')

    [one], [two] = objects(s3_event(first)), objects(s3_event(second))

    assert one.identity != two.identity


def test_version_id_null_of_a_versioning_suspended_bucket_falls_back_to_the_etag() -> None:
    # Every overwrite in a versioning-suspended bucket gets the version id "null": keyed on it,
    # the second upload would share the first one's claim and never train.
    first, second = s3_record("ccml-a", "incoming/x.csv", '"e1"'), s3_record("ccml-a", "incoming/x.csv", '"e2"')
    for record in (first, second):
        record["s3"]["object"]["versionId"] = "null"

    [one], [two] = objects(s3_event(first)), objects(s3_event(second))

    assert (one.version_id, one.identity) == (None, "s3://ccml-a/incoming/x.csv@e1")
    assert one.identity != two.identity


@pytest.mark.parametrize("etag", [None, "", '""'])
def test_created_object_without_version_id_or_etag_is_refused(etag: str | None) -> None:
    record = s3_record("ccml-a", "incoming/x.csv")
    if etag is not None:
        record["s3"]["object"]["eTag"] = etag

    with pytest.raises(EventError, match=r"at \$\.Records\[0\]: s3://ccml-a/incoming/x.csv carries neither"):
        parse_event(s3_event(record))


# -- SQS and SNS -----------------------------------------------------------------------------
@pytest.mark.parametrize("wrap", WRAPPERS.values(), ids=list(WRAPPERS))
def test_wrapped_notification_yields_the_same_objects_as_the_bare_one(wrap: Wrapper) -> None:
    bare = s3_event(
        s3_record("ccml-a", AWKWARD_KEY, '"e1"'),
        s3_record("ccml-a", "incoming/gone.csv", '"e2"', event_name="ObjectRemoved:Delete"),
        s3_record("ccml-a", "incoming/two.csv", '"e3"'),
    )

    wrapped = parse_event(wrap(bare))

    assert wrapped.objects == parse_event(bare).objects
    assert [obj.key for obj in wrapped.objects] == [AWKWARD_KEY, "incoming/two.csv"]
    [removed] = wrapped.ignored
    assert (removed.kind, removed.key) == ("ObjectRemoved:Delete", "incoming/gone.csv")


def test_sqs_batch_of_sns_notifications_yields_every_object_in_order_with_its_path() -> None:
    event = sqs_event(
        sns_notification(s3_event(s3_record("ccml-a", "incoming/1.csv", '"e1"'))),
        s3_event(s3_record("ccml-a", "incoming/2.csv", '"e2"')),  # raw message delivery
        eventbridge_event("ccml-a", "incoming/3.csv", etag="e3"),  # an EventBridge rule targeting the queue
        sns_notification(s3_test_event("ccml-a")),
    )

    parsed = parse_event(event)

    assert [obj.key for obj in parsed.objects] == ["incoming/1.csv", "incoming/2.csv", "incoming/3.csv"]
    assert parsed.ignored == (IgnoredMessage("s3:TestEvent", "$.Records[3].body.Message", "ccml-a"),)


@pytest.mark.parametrize("wrap", [lambda e: e, *WRAPPERS.values()], ids=["bare", *WRAPPERS])
def test_s3_test_event_is_acknowledged_as_ignored(wrap: Wrapper) -> None:
    parsed = parse_event(wrap(s3_test_event("ccml-a")))

    assert parsed.objects == ()
    [message] = parsed.ignored
    assert (message.kind, message.bucket) == ("s3:TestEvent", "ccml-a")


def sqs_with_body(body: Any) -> dict[str, Any]:
    record = sqs_record("")
    record["body"] = body
    return {"Records": [record]}


def sns_with(**fields: Any) -> dict[str, Any]:
    record = sns_record(s3_event(s3_record("ccml-a", "incoming/x.csv", '"e1"')))
    record["Sns"].update(fields)
    return {"Records": [record]}


def nested(depth: int) -> dict[str, Any]:
    event = s3_event(s3_record("ccml-a", "incoming/x.csv", '"e1"'))
    for _ in range(depth):
        event = via_sqs(event)
    return event


GARBAGE_WRAPPERS: dict[str, tuple[Any, str]] = {
    "body not JSON": (sqs_with_body("<xml/>"), r"\$\.Records\[0\]\.body: not JSON"),
    "empty body": (sqs_with_body(""), r"\$\.Records\[0\]\.body: not JSON"),
    "no body": (sqs_with_body(None), r"\$\.Records\[0\]\.body: expected JSON text, got null"),
    "body an object, not text": (sqs_with_body({"Records": []}), r"\.body: expected JSON text, got dict"),
    "body a JSON list": (sqs_with_body("[1, 2]"), r"\$\.Records\[0\]\.body: expected a JSON object, got list"),
    "body unknown JSON": (sqs_with_body('{"hello": "world"}'), r"\.body: not an S3 notification"),
    "body nested past the parser's stack": (sqs_with_body("[" * 100_000 + "]" * 100_000), r"\.body: not JSON"),
    "no Sns": ({"Records": [{"EventSource": "aws:sns"}]}, r"\$\.Records\[0\]: missing 'Sns'"),
    "Sns message not JSON": (sns_with(Message="Object created!"), r"\.Sns\.Message: not JSON"),
    "Sns message a number": (sns_with(Message=7), r"\.Sns\.Message: expected JSON text, got int"),
    "SNS unsubscribe record": (sns_with(Type="UnsubscribeConfirmation"), "'UnsubscribeConfirmation' message carries"),
    "SNS subscription confirmation via SQS": (
        sqs_event({**sns_notification({}), "Type": "SubscriptionConfirmation"}),
        r"\.body: an SNS 'SubscriptionConfirmation' message carries no S3 notification",
    ),
    "empty SQS batch": ({"Records": []}, r"\$\.Records: expected a non-empty list"),
    "empty notification in SQS": (sqs_event({"Records": []}), r"\.body\.Records: expected a non-empty list"),
    "record of another service": ({"Records": [{"eventSource": "aws:kinesis"}]}, "from 'aws:kinesis'"),
    "EventBridge event of another source": ({"source": "aws.events", "detail-type": "Scheduled Event"}, "aws.events"),
    "too many envelopes": (nested(MAX_ENVELOPES + 1), f"deeper than {MAX_ENVELOPES}"),
}


@pytest.mark.parametrize(("event", "message"), GARBAGE_WRAPPERS.values(), ids=list(GARBAGE_WRAPPERS))
def test_unrecognised_wrapper_is_refused_naming_where(event: Any, message: str) -> None:
    with pytest.raises(EventError, match=message):
        parse_event(event)


def test_envelopes_up_to_the_limit_are_unwrapped() -> None:
    assert [obj.key for obj in objects(nested(MAX_ENVELOPES))] == ["incoming/x.csv"]


def test_one_malformed_message_refuses_the_whole_batch() -> None:
    good = s3_event(s3_record("ccml-a", "incoming/x.csv", '"e1"'))
    event = sqs_event(good, good)
    event["Records"][1]["body"] = "{truncated"

    with pytest.raises(EventError, match=r"\$\.Records\[1\]\.body"):
        parse_event(event)


# -- malformed S3 events -----------------------------------------------------------------------
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
        {"Records": [{"eventSource": "aws:s3", "s3": {}}]},
        {"detail-type": "Object Created"},
        {"source": "aws.s3", "detail-type": "Object Created", "detail": {"bucket": {"name": "ccml-a"}, "object": {}}},
        {"source": "aws.s3", "detail-type": "Object Created", "detail": {"bucket": {}, "object": {"key": "k"}}},
        {
            "source": "aws.s3",
            "detail-type": "Object Created",
            "detail": {"bucket": {"name": "a"}, "object": {"key": ["x"]}},
        },
        {"source": "aws.s3", "detail": {}},
        [],
        "Records",
        None,
    ],
    ids=repr,
)
def test_malformed_event_raises_config_error(event: Any) -> None:
    with pytest.raises(EventError, match="malformed S3 event at "):
        parse_event(event)


# -- the sample events -------------------------------------------------------------------------
SAMPLES = sorted(EXAMPLES.glob("*.json"))


@pytest.mark.parametrize("path", SAMPLES, ids=lambda path: path.name)
def test_each_sample_event_announces_one_csv_of_the_demo_bucket(path: Path) -> None:
    [found] = objects(json.loads(path.read_text("utf-8")))

    assert found.bucket == "ccml-demo"
    assert found.key.startswith("incoming/")
    assert found.key.endswith(".csv")


def test_sample_events_announce_distinct_objects_so_each_trains() -> None:
    found = [obj for path in SAMPLES for obj in objects(json.loads(path.read_text("utf-8")))]

    assert {path.name for path in SAMPLES} >= {"s3-put.json", "eventbridge-object-created.json"}
    assert len({obj.identity for obj in found}) == len({obj.key for obj in found}) == len(SAMPLES)
