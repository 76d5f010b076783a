"""bench/cost.py's arithmetic: DynamoDB item sizes and request units, and prices, by hand."""

from __future__ import annotations

import json

import pytest

from bench.cost import PRICES_FILE, _units, item_size


def test_item_size_counts_attribute_names_and_values_as_dynamodb_does():
    # GIVEN an item with a string, a number, a bool, a list and a map
    item = {
        "media_id": {"S": "abc"},  # 8 + 3
        "size": {"N": "12345"},  # 4 + (5 digits -> 3 bytes) + 1
        "ok": {"BOOL": True},  # 2 + 1
        "tags": {"L": [{"S": "x"}, {"S": "yz"}]},  # 4 + 3 + (1 + 1) + (1 + 2)
        "m": {"M": {"k": {"S": "v"}}},  # 1 + 3 + 1 + 1 + 1
    }
    # WHEN its size is computed THEN every part is counted by the documented rule
    assert item_size(item) == (8 + 3) + (4 + 4) + (2 + 1) + (4 + 3 + 2 + 3) + (1 + 3 + 3)


def test_units_round_up_per_started_step_and_never_to_zero():
    # GIVEN write units per started KB and read units per started 4 KB
    # THEN 1 byte and 1024 bytes are one write unit, 1025 two; 4097 bytes two read units
    assert (_units(1, 1024), _units(1024, 1024), _units(1025, 1024)) == (1, 1, 2)
    assert (_units(0, 4096), _units(4097, 4096)) == (1, 2)


@pytest.mark.parametrize("service,name", [
    ("s3", "put_copy_post_list_per_1000"), ("dynamodb", "write_request_unit_per_million"),
    ("lambda", "gb_second_x86_64"), ("stepfunctions_express", "gb_second")])
def test_every_price_names_its_source(service, name):
    # GIVEN the repository's price table THEN each price carries a number and the page it came from
    prices = json.loads(PRICES_FILE.read_text())
    assert prices["region"] == "us-east-1" and prices["date"]
    assert prices[service][name]["usd"] > 0 and prices[service][name]["source"].startswith("https://")
