"""What the console's bank admin accepts as an entry's source (api.bank_admin)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mediaguard.api.bank_admin import HashesIn, _csv_source

PDQ = "f" * 64


def test_only_banking_an_item_may_claim_an_item_source():
    # GIVEN hashes posted with a source naming an item this platform holds
    # WHEN they are parsed  THEN refused: that source makes the item view show the item beside matches
    with pytest.raises(ValidationError, match="item: source"):
        HashesIn(entries=[{"ref": "r-1", "pdq": PDQ}], source="item:0f3c8a1e6b2d4c59a7e1f0b2c3d4e5f6")
    # AND any other source is kept as given
    assert HashesIn(entries=[{"ref": "r-1", "pdq": PDQ}], source="console").source == "console"


def test_a_csv_source_is_a_digest_of_its_file_name_never_the_name():
    # GIVEN a CSV whose file name names a person
    source = _csv_source("jane doe reports.csv")
    # THEN the source carries a digest, the same for the same name, and no part of the name
    assert source.startswith("csv:") and len(source) == 16 and "jane" not in source
    assert source == _csv_source("jane doe reports.csv") and _csv_source(None) == "csv"
