"""Hash banks on the local file store: the service's rules (the store-independent ones are
tests/bank_contract.py, run here and, over DynamoDB, in tests/functional), validation, the
CSV exchange format and the audit trail. No AWS here."""

from __future__ import annotations

import numpy as np
import pytest

from mediaguard.analysis.banks.embeddings import decode_embedding, encode_embedding
from mediaguard.analysis.banks.errors import (
    BankCsvError,
    BankExistsError,
    BankNotFoundError,
    EntryNotFoundError,
    InvalidBankError,
    InvalidEntryError,
)
from mediaguard.analysis.banks.exchange import pdq_csv_entries
from mediaguard.analysis.banks.model import NewEntry
from mediaguard.analysis.banks.service import BankService
from mediaguard.analysis.banks.sources import pdq_featurizer
from mediaguard.analysis.banks.validation import pdq_ref
from mediaguard.audit.chain import verify
from mediaguard.local.bankfile import FileBankStore, default_bank_dir
from mediaguard.settings import Settings
from tests.bank_contract import H1, H2, H3, BankServiceContract, pdq_rows
from tests.conftest import jpeg_bytes, photo
from tests.fakes import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def svc(tmp_path, clock) -> BankService:
    return BankService(FileBankStore(tmp_path / "banks", clock=clock), clock=clock)


@pytest.fixture
def ncii(svc) -> BankService:
    svc.create_bank("ncii", "block", actor="ops:ana")
    return svc


class TestFileBankStore(BankServiceContract):
    """The contract's rules over the local file store."""


# --- banks -----------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [
    {"name": "ncii", "kind": "delete"},
    {"name": "ncii", "kind": "block", "action": "nuke"},
    {"name": "ncii", "kind": "block", "pdq_threshold": 100},
    {"name": "ncii", "kind": "block", "embedding_threshold": 1.5},
    {"name": "../etc", "kind": "block"},
    {"name": "", "kind": "block"},
])
def test_invalid_bank_settings_are_refused(svc, kwargs):
    with pytest.raises(InvalidBankError):
        svc.create_bank(actor="ops:ana", **kwargs)
    assert svc.list_banks() == []


def test_a_bank_name_is_taken_once(ncii):
    with pytest.raises(BankExistsError):
        ncii.create_bank("ncii", "flag", actor="ops:bo")
    assert ncii.get_bank("ncii").kind == "block"


def test_adding_to_an_unknown_bank_is_refused(svc):
    with pytest.raises(BankNotFoundError):
        svc.add_entries("nope", [NewEntry(ref="a", value=H1)], actor="ops:ana")


# --- entries: add, confirm, withdraw ------------------------------------------------------


def test_withdrawing_or_confirming_an_unknown_ref_fails(ncii):
    with pytest.raises(EntryNotFoundError):
        ncii.withdraw("ncii", "nope", actor="ops:bo")
    with pytest.raises(EntryNotFoundError):
        ncii.confirm("ncii", "nope", actor="ops:bo")


def test_invalid_entries_are_refused(ncii):
    for bad in (NewEntry(ref="a", value="xyz"), NewEntry(ref="", value=H1), NewEntry(ref="a", value=H1, quality=101),
                NewEntry(ref="a"), NewEntry(ref="a\nb", value=H1), NewEntry(ref="a", signal="embedding", value=H1)):
        with pytest.raises(InvalidEntryError):
            ncii.add_entries("ncii", [bad], actor="ops:ana")
    assert list(ncii.entries("ncii")) == []


# --- media, frames and embeddings --------------------------------------------------------------


def test_add_media_with_the_default_featurizer_hashes_like_an_upload(ncii):
    # GIVEN a real photo, banked through the same code path uploads take
    data = jpeg_bytes(photo("chelsea"))
    report = ncii.add_media("ncii", "cat", data, declared="image/jpeg", featurizer=pdq_featurizer(), actor="ops:ana")
    (row,) = ncii.active_entries()
    # THEN it is one entry with a usable PDQ, and a smaller re-encode lands within the bank's threshold
    from mediaguard.ingress.ingest import prepare

    reupload = prepare(jpeg_bytes(photo("chelsea").resize((225, 150)), quality=70), "image/jpeg", Settings(),
                       forensics=False).fingerprints
    assert report.refs == ["cat"] and row.quality >= 50
    assert (int(row.value, 16) ^ int(reupload.pdq, 16)).bit_count() <= ncii.get_bank("ncii").pdq_threshold


def test_embeddings_are_stored_as_normalised_float16():
    v = np.random.default_rng(1).normal(size=1024).astype(np.float32)
    text = encode_embedding(v)
    back = decode_embedding(text)
    assert len(text) == 4 * ((2 * 1024 + 2) // 3)  # base64 of 2 bytes per value
    assert float(np.dot(back, v / np.linalg.norm(v))) > 0.999
    for bad in ([], [0.0, 0.0], [1.0, float("nan")]):
        with pytest.raises(InvalidEntryError):
            encode_embedding(bad)
    with pytest.raises(InvalidEntryError):
        decode_embedding("not base64!")


# --- CSV ---------------------------------------------------------------------------------------


def test_threatexchange_dataset_csv(ncii):
    # `tx dataset -P --csv`: other signal types and false positives are skipped, duplicates across
    # collaborations collapse, and with no id column the ref is a digest of the hash (not the hash)
    text = ("collab,signal_type,signal_str,category,tags\n"
            f"Sample Data,pdq,{H1},INVESTIGATION_SEED,media_type_photo\n"
            f"Other Collab,pdq,{H1},INVESTIGATION_SEED,\n"
            "Sample Data,video_md5,d41d8cd98f00b204e9800998ecf8427e,INVESTIGATION_SEED,\n"
            f"Sample Data,pdq,{H2},FALSE_POSITIVE,\n")
    report = ncii.import_csv("ncii", text, actor="ops:ana")
    assert (report.added, report.skipped_rows) == (1, 2)
    assert pdq_rows(ncii) == {pdq_ref(H1): H1}
    assert H1 not in pdq_ref(H1)


def test_stopncii_records_with_withdrawals(ncii):
    # FetchHashes records flattened to CSV (camelCase headers); a Withdrawn hash withdraws its entry
    ncii.import_csv("ncii", f"signalType,hashValue,hashStatus\nImagePDQ,{H1},Active\nImagePDQ,{H2},Active\n",
                    actor="ops:ana")
    later = ("lastModtimestamp,signalType,hashValue,hashStatus,caseNumbers\n"
             f"1795000000,ImagePDQ,{H2},Withdrawn,\"{{'c-9': 'Withdrawn'}}\"\n"
             f"1795000001,VideoMD5,d41d8cd98f00b204e9800998ecf8427e,Active,\n"
             f"1795000002,ImagePDQ,{H3},Received,\n")
    report = ncii.import_csv("ncii", later, actor="ops:ana")
    assert (report.added, report.withdrawn, report.skipped_rows) == (1, 1, 1)
    assert sorted(pdq_rows(ncii).values()) == sorted([H1, H3])
    tomb = next(e for e in ncii.entries("ncii") if e.status == "withdrawn")
    assert tomb.ref == pdq_ref(H2) and tomb.withdrawn_by == "ops:ana" and tomb.pdq is None


@pytest.mark.parametrize("text,expected", [
    # bare rows, upper case, with a quality after the hash and a file name (never used as a ref)
    (f"{H1.upper()},87,holiday-jane.jpg\n{H2}\n", [(pdq_ref(H1), H1, 87), (pdq_ref(H2), H2, None)]),
    # the PDQ reference hasher's key=value lines
    (f"hash={H1},norm=128,delta=0,quality=100,filename=a.jpg\n", [(pdq_ref(H1), H1, 100)]),
    # `tx` text output: "<type> <hash>", and a comment line; a SHA-256 is 64 hex too but never a PDQ
    (f"# from tx\npdq {H1}\nvideo_md5 d41d8cd98f00b204e9800998ecf8427e\nsha256 {H3}\n", [(pdq_ref(H1), H1, None)]),
    (f"hash_type,hash\nsha256,{H3}\nPDQ,{H2}\n", [(pdq_ref(H2), H2, None)]),
    # a spreadsheet: byte-order mark, tab-separated, an id column, extra columns
    (f"\ufeffID\tPDQ Hash\tQuality\tnotes\n17\t{H1}\t90\tseen twice\n", [("17", H1, 90)]),
    # columns found by content when no header names the hash
    (f"ref,checksum,score\nx-1,{H2},12\n", [("x-1", H2, None)]),
])
def test_liberal_csv_shapes(text, expected):
    entries = list(pdq_csv_entries(text))
    assert [(e.ref, e.value, e.quality) for e in entries] == expected


@pytest.mark.parametrize("text,row,reason", [
    (f"pdq_hash,quality\n{H1},90\n{H1[:-1]},90\n", 3, "invalid_pdq"),
    (f"pdq_hash,quality\n{H1},90\n{H2},101\n", 3, "invalid_quality"),
    (f"pdq_hash,quality\n{H1},90\n{H2},inf\n", 3, "invalid_quality"),
    (f"{H1}\n{H2}\nnot-a-hash-at-all\n", 3, "missing_pdq"),
    (f"ref,pdq_hash\na,{H1}\nb,{H2}\na,{H3}\n", 4, "duplicate_ref"),
    ("pdq_hash,status\n,withdrawn\n", 2, "missing_ref"),
    (f"pdq_hash,ref\n{H1},\"bad\x01ref\"\n", 2, "invalid_ref"),
    (f"pdq_hash,quality\n{H1},90\n\"{H2},90\n", 3, "unreadable_row"),
])
def test_an_invalid_row_is_named_by_number_only(ncii, text, row, reason):
    # WHEN a file with one bad row is imported
    with pytest.raises(BankCsvError) as caught:
        ncii.import_csv("ncii", text, actor="ops:ana")
    # THEN the error names the row and the problem, never the row's contents
    assert (caught.value.row, caught.value.reason) == (row, reason)
    assert str(caught.value).startswith(f"row {row} ")
    for secret in (H1, H2, H3, H1[:-1], "bad"):
        assert secret not in str(caught.value)
    # AND nothing was imported, not even the good rows before it
    assert list(ncii.entries("ncii")) == []


# --- local files and the audit trail -------------------------------------------------------------


def test_the_local_store_lives_under_mediaguard_home(monkeypatch, tmp_path):
    monkeypatch.setenv("MEDIAGUARD_HOME", str(tmp_path / "home"))
    assert default_bank_dir() == tmp_path / "home" / "banks"
    monkeypatch.delenv("MEDIAGUARD_HOME")
    monkeypatch.chdir(tmp_path)
    assert default_bank_dir() == tmp_path / ".mediaguard" / "banks"


def test_bank_changes_leave_a_verifiable_audit_chain(tmp_path, clock):
    store = FileBankStore(tmp_path, clock=clock)
    svc = BankService(store, clock=clock, audit=store.append_audit)
    svc.create_bank("ncii", "block", actor="ops:ana")
    svc.import_csv("ncii", f"{H1}\n", actor="ops:ana")
    svc.withdraw("ncii", pdq_ref(H1), actor="ops:bo")
    chain = store.audit_chain("bank:ncii")
    assert [(r.event, r.actor) for r in chain] == [
        ("bank_created", "ops:ana"), ("entries_added", "ops:ana"), ("entries_withdrawn", "ops:bo")]
    assert chain[1].detail["added"] == 1 and verify(chain) == []
    assert H1 not in (tmp_path / ".audit" / "bank_ncii.jsonl").read_text()
