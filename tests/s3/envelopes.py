"""The other shapes in which S3 announces an object: EventBridge events, and notifications wrapped
in SNS and SQS messages as Lambda receives them (field for field after AWS's documented samples)."""

from __future__ import annotations

import json
import uuid
from typing import Any

TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:ccml-incoming"
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:ccml-retrain"


def eventbridge_event(
    bucket: str, key: str, detail_type: str = "Object Created", **object_fields: Any
) -> dict[str, Any]:
    """S3's EventBridge event; the key is as stored (EventBridge does not URL-encode it)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-11-27T12:00:00Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {"version": "0", "bucket": {"name": bucket}, "object": {"key": key, **object_fields}},
    }


def s3_test_event(bucket: str) -> dict[str, Any]:
    """What S3 sends to an SQS queue or SNS topic when a notification to it is configured."""
    return {
        "Service": "Amazon S3",
        "Event": "s3:TestEvent",
        "Time": "2026-11-27T12:00:00.000Z",
        "Bucket": bucket,
        "RequestId": "5582815E1AEA5ADF",
        "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE",
    }


def sns_notification(message: dict[str, Any]) -> dict[str, Any]:
    """An SNS notification document: what an SQS subscriber receives unless raw message delivery is on."""
    return {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": TOPIC_ARN,
        "Subject": "Amazon S3 Notification",
        "Message": json.dumps(message),
        "Timestamp": "2026-11-27T12:00:00.000Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLE",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-EXAMPLE.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=EXAMPLE",
    }


def sns_record(message: dict[str, Any]) -> dict[str, Any]:
    """One record of the event SNS invokes a subscribed Lambda with."""
    notification = sns_notification(message)
    notification.pop("Subject")
    return {
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": f"{TOPIC_ARN}:{uuid.uuid4()}",
        "Sns": {**notification, "MessageAttributes": {}},
    }


def sns_event(*messages: dict[str, Any]) -> dict[str, Any]:
    return {"Records": [sns_record(message) for message in messages]}


def sqs_record(body: str) -> dict[str, Any]:
    """One message of the batch an SQS event source mapping invokes Lambda with; ``body`` is raw text."""
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a...",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1795780200000"},
        "messageAttributes": {},
        "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
        "eventSource": "aws:sqs",
        "eventSourceARN": QUEUE_ARN,
        "awsRegion": "us-east-1",
    }


def sqs_event(*bodies: dict[str, Any]) -> dict[str, Any]:
    return {"Records": [sqs_record(json.dumps(body)) for body in bodies]}


def via_sqs(event: dict[str, Any]) -> dict[str, Any]:
    return sqs_event(event)


def via_sns(event: dict[str, Any]) -> dict[str, Any]:
    return sns_event(event)


def via_sqs_and_sns(event: dict[str, Any]) -> dict[str, Any]:
    """S3 -> SNS topic -> SQS queue (raw message delivery off) -> Lambda: the common fan-out."""
    return sqs_event(sns_notification(event))


WRAPPERS = {"sqs": via_sqs, "sns": via_sns, "sqs+sns": via_sqs_and_sns}
