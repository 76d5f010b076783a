"""Hash banks on DynamoDB: the rules of tests/bank_contract.py through DynamoBankStore and
pynamodb, on moto, with the bank tables exactly as template.yaml declares them (keys, GSIs)."""

from __future__ import annotations

import pytest
from moto import mock_aws

from mediaguard.adapters import tables
from mediaguard.analysis.banks.service import BankService
from mediaguard.local.template import Stack
from mediaguard.settings import Settings
from tests.bank_contract import BankServiceContract
from tests.conftest import REPO
from tests.fakes import Clock


@pytest.fixture(scope="module")
def moto_dynamodb():
    """In-process moto for the module, and the bank tables' definitions from template.yaml."""
    names = {m: m.Meta.table_name for m in tables.MODELS.values()}
    stack = Stack.from_file(REPO / "template.yaml", region="us-east-1")
    definitions = {}
    for logical in ("BanksTable", "BankEntriesTable"):
        props = stack.resolve(stack.resources[logical]["Properties"])
        definitions[logical] = {k: props[k] for k in ("AttributeDefinitions", "KeySchema", "BillingMode",
                                                      "GlobalSecondaryIndexes") if k in props}
    with mock_aws():
        import boto3

        yield boto3.client("dynamodb", region_name="us-east-1"), definitions
    for model, name in names.items():  # bind() is process-wide: leave the defaults as found
        model.Meta.table_name = name
        model._connection = None


@pytest.fixture
def dynamo_store(moto_dynamodb, request):
    """DynamoBankStore over fresh tables created exactly as the template declares them."""
    from mediaguard.adapters.banks import DynamoBankStore

    ddb, definitions = moto_dynamodb
    suffix = f"{len(ddb.list_tables()['TableNames'])}"
    names = {"BanksTable": f"banks-{suffix}", "BankEntriesTable": f"bank-entries-{suffix}"}
    for logical, name in names.items():
        ddb.create_table(TableName=name, **definitions[logical])
    yield DynamoBankStore(Settings(banks_table=names["BanksTable"], bank_entries_table=names["BankEntriesTable"],
                                   region="us-east-1"))
    for name in names.values():
        ddb.delete_table(TableName=name)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def svc(dynamo_store, clock) -> BankService:
    return BankService(dynamo_store, clock=clock)


@pytest.fixture
def ncii(svc) -> BankService:
    svc.create_bank("ncii", "block", actor="ops:ana")
    return svc


class TestDynamoBankStore(BankServiceContract):
    """The contract's rules over the banks and bank-entries tables."""
