"""Local mode behaves as AWS where a first-time user found it did not (issue 14, local fidelity)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError


def _retention(mode: str, days: float) -> dict:
    return {"Mode": mode, "RetainUntilDate": datetime.now(UTC) + timedelta(days=days)}


def test_a_compliance_lock_cannot_be_shortened_or_weakened(cloud):
    # GIVEN a digest-like object under a 30-day COMPLIANCE lock in the digest archive
    s3 = cloud.client("s3")
    bucket = cloud.output("DigestBucket")
    version = s3.put_object(Bucket=bucket, Key="digests/lock-test", Body=b"{}",
                            ObjectLockMode="COMPLIANCE",
                            ObjectLockRetainUntilDate=datetime.now(UTC) + timedelta(days=30))["VersionId"]

    # WHEN someone shortens it, or switches it to GOVERNANCE
    # THEN S3 (and now local mode) refuses with AccessDenied, as it would on AWS
    for attempt in (_retention("COMPLIANCE", 1), _retention("GOVERNANCE", 60)):
        with pytest.raises(ClientError) as refused:
            s3.put_object_retention(Bucket=bucket, Key="digests/lock-test", VersionId=version,
                                    Retention=attempt, BypassGovernanceRetention=True)
        assert refused.value.response["Error"]["Code"] == "AccessDenied"
    # AND extending it is allowed
    s3.put_object_retention(Bucket=bucket, Key="digests/lock-test", VersionId=version,
                            Retention=_retention("COMPLIANCE", 90))
    held = s3.head_object(Bucket=bucket, Key="digests/lock-test", VersionId=version)  # moto has no GetObjectRetention
    assert held["ObjectLockMode"] == "COMPLIANCE"
    assert held["ObjectLockRetainUntilDate"] > datetime.now(UTC) + timedelta(days=89)


def test_a_governance_lock_is_shortened_only_with_the_bypass_header(cloud):
    # GIVEN an evidence-like object under a GOVERNANCE lock
    s3 = cloud.client("s3")
    bucket = cloud.output("EvidenceBucket")
    version = s3.put_object(Bucket=bucket, Key="lock-test", Body=b"x", ObjectLockMode="GOVERNANCE",
                            ObjectLockRetainUntilDate=datetime.now(UTC) + timedelta(days=30))["VersionId"]

    # WHEN it is shortened without x-amz-bypass-governance-retention
    # THEN AccessDenied; with it (an investigator's s3:BypassGovernanceRetention), it is allowed
    with pytest.raises(ClientError) as refused:
        s3.put_object_retention(Bucket=bucket, Key="lock-test", VersionId=version,
                                Retention=_retention("GOVERNANCE", 1))
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    s3.put_object_retention(Bucket=bucket, Key="lock-test", VersionId=version,
                            Retention=_retention("GOVERNANCE", 1), BypassGovernanceRetention=True)


def test_a_retried_transaction_with_the_same_client_token_is_applied_once(cloud):
    # GIVEN a transaction that adds 1 to a counter, sent with a ClientRequestToken
    ddb = cloud.client("dynamodb")
    table = cloud.output("MediaTable")
    write = {"TransactItems": [{"Update": {
        "TableName": table, "Key": {"media_id": {"S": "token-test"}},
        "UpdateExpression": "ADD hits :one", "ExpressionAttributeValues": {":one": {"N": "1"}}}}],
        "ClientRequestToken": "a-retried-request"}
    # WHEN the SDK sends it again (its first answer was lost), and then a new request is sent
    ddb.transact_write_items(**write)
    ddb.transact_write_items(**write)
    ddb.transact_write_items(**{**write, "ClientRequestToken": "a-new-request"})
    # THEN, as on DynamoDB, the retry changed nothing: two increments, not three
    item = ddb.get_item(TableName=table, Key={"media_id": {"S": "token-test"}}, ConsistentRead=True)["Item"]
    assert item["hits"] == {"N": "2"}
