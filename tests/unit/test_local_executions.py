"""Local mode's waiter for Step Functions executions: woken by the end of the execution."""

from __future__ import annotations

import json
import threading
import time

import boto3
import pytest
from moto import mock_aws

from mediaguard.local import concurrency
from mediaguard.local.executions import TerminalWatch, honour_include_execution_data

ARN = "arn:aws:states:eu-west-1:123456789012:execution:pipeline:media-1"


def test_a_waiter_is_woken_when_its_execution_ends():
    # GIVEN a waiter blocked on one execution
    watch = TerminalWatch()
    woke: list[bool] = []
    waiter = threading.Thread(target=lambda: woke.append(watch.wait(ARN, timeout=60)))
    waiter.start()
    # WHEN another execution ends, then its own
    watch.ended(ARN.replace("media-1", "media-2"))
    watch.ended(ARN)
    waiter.join(timeout=60)
    # THEN it returned because its execution ended, not because the time ran out
    assert woke == [True]


def test_an_execution_that_ended_before_the_wait_does_not_block():
    watch = TerminalWatch()
    watch.ended(ARN)
    assert watch.wait(ARN, timeout=0) is True


def test_a_wait_on_an_execution_that_never_ends_gives_up():
    assert TerminalWatch().wait(ARN, timeout=0.01) is False


def test_the_states_an_execution_entered_are_kept_with_its_end():
    watch = TerminalWatch()
    watch.ended(ARN, ["Sanitize", "MediaType", "Enforce"])
    assert watch.entered(ARN) == ["Sanitize", "MediaType", "Enforce"]
    assert watch.entered(ARN.replace("media-1", "media-2")) is None


# --- moto gaps local mode fills (same semantics as AWS, checked against moto directly) ---


def _table(client, name: str, range_key: bool) -> None:
    keys = [("pk", "HASH")] + ([("sk", "RANGE")] if range_key else [])
    client.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                        KeySchema=[{"AttributeName": a, "KeyType": t} for a, t in keys],
                        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a, _ in keys],
                        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})


def _stream_records(client, name: str) -> int:
    # moto's DynamoDB Streams API has no DescribeStream: count the shard's records directly.
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    return len(dynamodb_backends[DEFAULT_ACCOUNT_ID]["eu-west-1"].tables[name].stream_shard.items)


@pytest.mark.parametrize("range_key", [True, False], ids=["hash+range", "hash-only"])
def test_a_cancelled_transaction_leaves_every_item_and_stream_as_it_was(range_key):
    # GIVEN moto with item-level transaction snapshots, and one existing item
    key = (lambda pk: {"pk": {"S": pk}, "sk": {"S": "1"}}) if range_key else (lambda pk: {"pk": {"S": pk}})
    with mock_aws():
        undo = concurrency.item_level_transaction_snapshots()
        try:
            ddb = boto3.client("dynamodb", region_name="eu-west-1")
            _table(ddb, "t", range_key)
            ddb.put_item(TableName="t", Item={**key("a"), "n": {"N": "1"}})
            ddb.put_item(TableName="t", Item=key("d"))
            records = _stream_records(ddb, "t")
            # WHEN a transaction puts a new item, updates one, deletes one, then fails a condition
            with pytest.raises(ddb.exceptions.TransactionCanceledException):
                ddb.transact_write_items(TransactItems=[
                    {"Put": {"TableName": "t", "Item": key("b")}},
                    {"Update": {"TableName": "t", "Key": key("a"), "UpdateExpression": "SET n = :two",
                                "ExpressionAttributeValues": {":two": {"N": "2"}}}},
                    {"Delete": {"TableName": "t", "Key": key("d")}},
                    {"ConditionCheck": {"TableName": "t", "Key": key("c"),
                                        "ConditionExpression": "attribute_exists(pk)"}},
                ])
            # THEN nothing of it is visible, in the table or in its stream
            assert sorted((i["pk"]["S"], i.get("n", {}).get("N")) for i in ddb.scan(TableName="t")["Items"]) == \
                [("a", "1"), ("d", None)]
            assert _stream_records(ddb, "t") == records
            # AND a transaction that passes applies every operation
            ddb.transact_write_items(TransactItems=[
                {"Put": {"TableName": "t", "Item": key("b")}},
                {"Update": {"TableName": "t", "Key": key("a"), "UpdateExpression": "SET n = :two",
                            "ExpressionAttributeValues": {":two": {"N": "2"}}}},
            ])
            assert sorted((i["pk"]["S"], i.get("n", {}).get("N")) for i in ddb.scan(TableName="t")["Items"]) == \
                [("a", "2"), ("b", None), ("d", None)]
        finally:
            undo()


def test_the_transaction_patch_copies_no_table():
    # A patch that silently stopped applying would still pass the test above (moto's own
    # whole-table rollback gives the same answer): check that no table is deep-copied.
    from moto.dynamodb.models.table import Table

    copies: list[str] = []
    original = getattr(Table, "__deepcopy__", None)
    with mock_aws():
        undo = concurrency.item_level_transaction_snapshots()
        try:
            ddb = boto3.client("dynamodb", region_name="eu-west-1")
            _table(ddb, "t", True)
            Table.__deepcopy__ = lambda self, memo: copies.append(self.name)  # noqa: ARG005
            ddb.transact_write_items(TransactItems=[{"Put": {"TableName": "t", "Item": {"pk": {"S": "a"},
                                                                                          "sk": {"S": "1"}}}}])
        finally:
            if original is None:
                del Table.__deepcopy__
            else:
                Table.__deepcopy__ = original
            undo()
    assert copies == []


def test_execution_history_without_execution_data_has_no_inputs_or_outputs():
    # GIVEN a one-state execution run by moto's interpreter
    definition = json.dumps({"StartAt": "Only", "States": {"Only": {"Type": "Pass", "End": True}}})
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        undo = honour_include_execution_data()
        try:
            sfn = boto3.client("stepfunctions", region_name="eu-west-1")
            arn = sfn.create_state_machine(name="m", definition=definition,
                                           roleArn="arn:aws:iam::123456789012:role/r")["stateMachineArn"]
            run = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"secret": "payload"}))["executionArn"]
            for _ in range(200):
                if sfn.describe_execution(executionArn=run)["status"] != "RUNNING":
                    break
                time.sleep(0.01)
            # WHEN the history is read with and without execution data
            full = sfn.get_execution_history(executionArn=run)["events"]
            bare = sfn.get_execution_history(executionArn=run, includeExecutionData=False)["events"]
            # THEN the same events come back, and only the full one carries the input
            assert [e["type"] for e in bare] == [e["type"] for e in full]
            assert "payload" in json.dumps(full, default=str)
            assert "payload" not in json.dumps(bare, default=str)
        finally:
            undo()


def test_only_the_newest_ended_executions_are_remembered():
    watch = TerminalWatch(keep=2)
    for n in (1, 2, 3):
        watch.ended(ARN.replace("media-1", f"media-{n}"), [f"S{n}"])
    assert watch.entered(ARN) is None  # the oldest is forgotten
    assert [watch.entered(ARN.replace("media-1", f"media-{n}")) for n in (2, 3)] == [["S2"], ["S3"]]
