"""Hash banks: the service's rules against both stores (local files, and pynamodb on
moto with the tables exactly as template.yaml declares them), and the CSV exchange format."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from moto import mock_aws

from mediaguard.adapters import tables
from mediaguard.analysis.banks.embeddings import decode_embedding, encode_embedding
from mediaguard.analysis.banks.errors import (
    BankCsvError,
    BankExistsError,
    BankNotFoundError,
    EntryNotFoundError,
    EntryWithdrawnError,
    InvalidBankError,
    InvalidEntryError,
)
from mediaguard.analysis.banks.exchange import pdq_csv_entries
from mediaguard.analysis.banks.model import Features, NewEntry
from mediaguard.analysis.banks.service import BankService
from mediaguard.analysis.banks.sources import pdq_featurizer
from mediaguard.analysis.banks.validation import pdq_ref
from mediaguard.analysis.index import PdqIndex
from mediaguard.audit.chain import verify
from mediaguard.local.bankfile import FileBankStore, default_bank_dir
from mediaguard.local.template import Stack
from mediaguard.settings import Settings
from tests.conftest import REPO, jpeg_bytes, photo

H1 = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
H2 = "0f" * 32
H3 = "a5f05ba8a4896a17c106a3da5aaaab07b61b5b42f8fc07fc83c3d0740bfcb0fa"
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float = 1.0) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def near(pdq: str, bits: int) -> str:
    """``pdq`` with its lowest ``bits`` bits flipped."""
    return f"{int(pdq, 16) ^ ((1 << bits) - 1):064x}"


@pytest.fixture
def clock() -> Clock:
    return Clock()


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


@pytest.fixture(params=["files", "dynamodb"])
def svc(request, tmp_path, clock) -> BankService:
    store = FileBankStore(tmp_path / "banks", clock=clock) if request.param == "files" \
        else request.getfixturevalue("dynamo_store")
    return BankService(store, clock=clock)


@pytest.fixture
def ncii(svc) -> BankService:
    svc.create_bank("ncii", "block", actor="ops:ana")
    return svc


# Rules that do not depend on the store (CSV parsing, validation) run on files only.
FILES_ONLY = pytest.mark.parametrize("svc", ["files"], indirect=True)


def pdq_rows(svc: BankService) -> dict[str, str]:
    return {e.ref: e.value for e in svc.active_entries() if e.signal == "pdq"}


# --- banks -----------------------------------------------------------------------------


def test_banks_carry_kind_thresholds_and_action_to_the_matcher(svc):
    # GIVEN one bank of each kind, with and without their own thresholds and action
    svc.create_bank("ncii", "block", actor="ops:ana", action="remove")
    svc.create_bank("deepfakes", "flag", actor="ops:ana", pdq_threshold=20, embedding_threshold=0.93)
    svc.create_bank("originals", "allow", actor="ops:ana")
    # THEN the matcher's view has each kind with its settings, defaults where none were given
    infos = {b.name: b for b in svc.banks()}
    assert (infos["ncii"].kind, infos["ncii"].action, infos["ncii"].pdq_threshold) == ("block", "remove", 31)
    assert infos["ncii"].embedding_threshold is None  # None: the system threshold
    assert (infos["deepfakes"].kind, infos["deepfakes"].pdq_threshold) == ("flag", 20)
    assert infos["deepfakes"].embedding_threshold == pytest.approx(0.93)
    assert infos["originals"].kind == "allow"
    assert [b.name for b in svc.list_banks()] == ["deepfakes", "ncii", "originals"]


@FILES_ONLY
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


@FILES_ONLY
def test_a_bank_name_is_taken_once(ncii):
    with pytest.raises(BankExistsError):
        ncii.create_bank("ncii", "flag", actor="ops:bo")
    assert ncii.get_bank("ncii").kind == "block"


@FILES_ONLY
def test_adding_to_an_unknown_bank_is_refused(svc):
    with pytest.raises(BankNotFoundError):
        svc.add_entries("nope", [NewEntry(ref="a", value=H1)], actor="ops:ana")


# --- entries: add, confirm, withdraw ------------------------------------------------------


def test_add_is_idempotent_and_a_changed_hash_needs_confirming_again(ncii, clock):
    # GIVEN an added, confirmed entry
    first = ncii.add_entries("ncii", [NewEntry(ref="case-1", value=H1.upper(), quality=90)], actor="ops:ana")
    ncii.confirm("ncii", "case-1", actor="ops:bo")
    # WHEN the same entry is added again
    clock.tick()
    again = ncii.add_entries("ncii", [NewEntry(ref="case-1", value=H1, quality=90)], actor="ops:ana")
    # THEN nothing changes: still confirmed, stored lowercase
    (entry,) = ncii.entries("ncii")
    assert (first.added, again.unchanged) == (1, 1)
    assert entry.pdq == H1 and entry.confirmed_by == "ops:bo"
    # WHEN the hash under that ref changes
    clock.tick()
    changed = ncii.add_entries("ncii", [NewEntry(ref="case-1", value=H2, quality=90)], actor="ops:cy")
    (entry,) = ncii.entries("ncii")
    # THEN it is replaced, keeps who added it first, and its confirmation is gone
    assert changed.updated == 1
    assert entry.pdq == H2 and entry.added_by == "ops:ana" and entry.added_at == T0
    assert entry.confirmed_by is None and entry.updated_at == clock.now


def test_confirm_records_who_and_when_without_touching_the_delta(ncii, clock):
    ncii.add_entries("ncii", [NewEntry(ref="case-1", value=H1)], actor="importer")
    clock.tick(60)
    (confirmed,) = ncii.confirm("ncii", "case-1", actor="ops:bo")
    (stored,) = ncii.entries("ncii")
    assert (stored.confirmed_by, stored.confirmed_at) == ("ops:bo", T0 + timedelta(seconds=60)) == \
        (confirmed.confirmed_by, confirmed.confirmed_at)
    # a confirmation changes nothing a matcher sees, so it does not show up as a change
    assert stored.updated_at == T0
    assert ncii.changed_since((T0 + timedelta(seconds=1)).timestamp()) == []


def test_withdraw_deletes_the_hash_at_once_and_keeps_a_tombstone(ncii, clock):
    # GIVEN two banked hashes, indexed for matching
    ncii.add_entries("ncii", [NewEntry(ref="case-1", value=H1, quality=100),
                              NewEntry(ref="case-2", value=H3, quality=100)], actor="importer")
    build = PdqIndex.build(list(pdq_rows(ncii).values()), ids=[1, 2])
    assert build.query(near(H1, 3))  # a re-upload of case-1 matches
    # WHEN case-1 turns out to be wrong and is withdrawn
    clock.tick(30)
    (tomb,) = ncii.withdraw("ncii", "case-1", actor="ops:bo")
    # THEN the next index build no longer holds it ...
    assert pdq_rows(ncii) == {"case-2": H3}
    assert PdqIndex.build(list(pdq_rows(ncii).values()), ids=[2]).query(near(H1, 3)) == []
    # ... the delta tells running matchers to drop it now, with no value attached ...
    (change,) = ncii.changed_since(clock.now.timestamp())
    assert (change.ref, change.active, change.value) == ("case-1", False, None)
    # ... a re-check before reporting turns it down ...
    assert list(ncii.recheck([("ncii", "case-1"), ("ncii", "case-2")])) == [("ncii", "case-2")]
    # ... and only a tombstone is left: ref, who, when; no hash anywhere
    stored = next(e for e in ncii.entries("ncii") if e.ref == "case-1")
    assert (stored.status, stored.withdrawn_by, stored.withdrawn_at) == ("withdrawn", "ops:bo", clock.now)
    assert stored.pdq is None and stored.quality is None and stored.embedding is None
    assert H1 not in repr(stored) and tomb == stored


def test_a_withdrawn_ref_is_never_revived_by_a_later_import(ncii):
    ncii.add_entries("ncii", [NewEntry(ref="case-1", value=H1)], actor="importer")
    ncii.withdraw("ncii", "case-1", actor="ops:bo")
    report = ncii.add_entries("ncii", [NewEntry(ref="case-1", value=H1)], actor="importer")
    assert (report.added, report.skipped_withdrawn) == (0, 1)
    assert pdq_rows(ncii) == {}
    with pytest.raises(EntryWithdrawnError):
        ncii.confirm("ncii", "case-1", actor="ops:bo")
    assert ncii.withdraw("ncii", "case-1", actor="ops:bo") == []  # already withdrawn: nothing to do


@FILES_ONLY
def test_withdrawing_or_confirming_an_unknown_ref_fails(ncii):
    with pytest.raises(EntryNotFoundError):
        ncii.withdraw("ncii", "nope", actor="ops:bo")
    with pytest.raises(EntryNotFoundError):
        ncii.confirm("ncii", "nope", actor="ops:bo")


@FILES_ONLY
def test_invalid_entries_are_refused(ncii):
    for bad in (NewEntry(ref="a", value="xyz"), NewEntry(ref="", value=H1), NewEntry(ref="a", value=H1, quality=101),
                NewEntry(ref="a"), NewEntry(ref="a\nb", value=H1), NewEntry(ref="a", signal="embedding", value=H1)):
        with pytest.raises(InvalidEntryError):
            ncii.add_entries("ncii", [bad], actor="ops:ana")
    assert list(ncii.entries("ncii")) == []


# --- media, frames and embeddings --------------------------------------------------------------


def test_add_media_banks_a_video_as_frames_of_one_group(ncii, clock):
    # GIVEN a featurizer that sees three frames, each with a PDQ and an embedding
    rng = np.random.default_rng(7)
    frames = [Features(pdq=near(H3, i + 1), quality=80, embedding=rng.normal(size=64)) for i in range(3)]
    calls = []

    def featurize(data: bytes, declared: str | None) -> list[Features]:
        calls.append((len(data), declared))
        return frames

    # WHEN a video is added under ref "vid-9"
    report = ncii.add_media("ncii", "vid-9", b"\x00" * 100, declared="video/mp4", featurizer=featurize,
                            actor="ops:ana")
    # THEN each frame is an entry vid-9#n in group vid-9, carrying both signals
    assert calls == [(100, "video/mp4")]
    assert report.refs == ["vid-9#0", "vid-9#1", "vid-9#2"] and report.added == 3
    rows = list(ncii.active_entries())
    assert sorted((r.ref, r.signal, r.group) for r in rows) == [
        (f"vid-9#{i}", s, "vid-9") for i in range(3) for s in ("embedding", "pdq")]
    vectors = {r.ref: r.value for r in rows if r.signal == "embedding"}
    expected = frames[1].embedding / np.linalg.norm(frames[1].embedding)
    assert float(np.dot(vectors["vid-9#1"], expected)) > 0.999
    # WHEN the whole video is withdrawn by its group ref
    clock.tick()
    withdrawn = ncii.withdraw("ncii", "vid-9", actor="ops:bo")
    # THEN every frame goes, and the delta names each frame's signals as inactive
    assert sorted(e.ref for e in withdrawn) == report.refs
    assert list(ncii.active_entries()) == []
    changes = ncii.changed_since(clock.now.timestamp())
    assert sorted((c.ref, c.signal, c.active, c.group) for c in changes) == [
        (f"vid-9#{i}", s, False, "vid-9") for i in range(3) for s in ("embedding", "pdq")]


def test_re_adding_a_shorter_version_of_a_video_drops_the_extra_frames(ncii, clock):
    ncii.add_media("ncii", "vid", [Features(pdq=near(H1, i + 1), quality=90) for i in range(4)], actor="ops:ana")
    clock.tick()
    ncii.add_media("ncii", "vid", [Features(pdq=near(H1, i + 1), quality=90) for i in range(2)], actor="ops:ana")
    assert sorted(pdq_rows(ncii)) == ["vid#0", "vid#1"]
    assert sorted(c.ref for c in ncii.changed_since(clock.now.timestamp()) if not c.active) == ["vid#2", "vid#3"]


@FILES_ONLY
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


# --- the delta the similarity stage polls ----------------------------------------------------


def test_changed_since_returns_adds_and_withdrawals_from_that_moment_on(ncii, clock):
    # GIVEN A added at t0, B at t0+10 s, and A withdrawn at t0+20 s
    ncii.add_entries("ncii", [NewEntry(ref="A", value=H1, quality=90)], actor="importer")
    t_b = clock.tick(10)
    ncii.add_entries("ncii", [NewEntry(ref="B", value=H2, quality=70)], actor="importer")
    clock.tick(10)
    ncii.withdraw("ncii", "A", actor="ops:bo")
    # WHEN a matcher whose index was built at t0+5 s asks what changed since
    changes = ncii.changed_since((T0 + timedelta(seconds=5)).timestamp())
    # THEN it learns of B (matchable now, with its hash) and of A's withdrawal (no hash)
    assert [(c.ref, c.active, c.value, c.quality) for c in changes] == [("B", True, H2, 70), ("A", False, None, None)]
    assert changes[0].updated_at == t_b.timestamp()
    # AND the bound is inclusive, and nothing is reported after the last change
    assert [c.ref for c in ncii.changed_since(t_b.timestamp())] == ["B", "A"]
    assert ncii.changed_since(clock.tick().timestamp()) == []


def test_deleting_a_bank_drops_its_entries_everywhere_even_if_the_name_returns(ncii, clock):
    # GIVEN a bank with an entry that running matchers have indexed
    ncii.add_entries("ncii", [NewEntry(ref="case-1", value=H1)], actor="importer")
    built_at = clock.tick().timestamp()
    # WHEN the bank is deleted and a bank of the same name is created again
    clock.tick()
    assert ncii.delete_bank("ncii", actor="ops:bo") == 1
    ncii.create_bank("ncii", "flag", actor="ops:bo")
    # THEN the new bank is empty, nothing is matchable, and matchers learn the old entry is gone
    assert list(ncii.entries("ncii")) == [] and list(ncii.active_entries()) == []
    assert [(c.ref, c.active, c.value) for c in ncii.changed_since(built_at)] == [("case-1", False, None)]
    # AND re-adding the ref to the new bank works (a deletion is not a withdrawal)
    assert ncii.add_entries("ncii", [NewEntry(ref="case-1", value=H1)], actor="importer").added == 1
    with pytest.raises(BankNotFoundError):
        ncii.delete_bank("never-was", actor="ops:bo")


def test_recheck_reports_current_bank_settings_for_active_entries_only(svc):
    svc.create_bank("ncii", "block", actor="ops:ana")
    svc.create_bank("gone", "flag", actor="ops:ana")
    svc.add_entries("ncii", [NewEntry(ref="a", value=H1), NewEntry(ref="b", value=H2)], actor="importer")
    svc.add_entries("gone", [NewEntry(ref="c", value=H3)], actor="importer")
    svc.withdraw("ncii", "b", actor="ops:bo")
    svc.delete_bank("gone", actor="ops:bo")
    svc.add_media("ncii", "vid", [Features(pdq=H1, quality=90), Features(pdq=H2, quality=90)], actor="importer")
    svc.withdraw("ncii", "vid#0", actor="ops:bo")
    checked = svc.recheck([("ncii", "a"), ("ncii", "b"), ("gone", "c"), ("ncii", "never"), ("ncii", "a"),
                           ("ncii", "vid")])
    # a withdrawn entry, a deleted bank and an unknown ref are turned down; a video group is
    # live while one of its frames is
    assert {k: v.kind for k, v in checked.items()} == {("ncii", "a"): "block", ("ncii", "vid"): "block"}
    svc.withdraw("ncii", "vid", actor="ops:bo")
    assert list(svc.recheck([("ncii", "vid")])) == []


# --- CSV ---------------------------------------------------------------------------------------


def test_export_then_import_round_trips_exactly(ncii, clock):
    # GIVEN a bank with plain hashes, a hash without quality, video frames and a withdrawal
    ncii.add_entries("ncii", [NewEntry(ref="case-1", value=H1, quality=100), NewEntry(ref="case, 2", value=H2),
                              NewEntry(ref="case-3", value=H3, quality=55)], actor="importer")
    ncii.add_media("ncii", "vid", [Features(pdq=near(H1, 5), quality=80), Features(pdq=near(H1, 9), quality=81)],
                   actor="ops:ana")
    ncii.withdraw("ncii", "case-3", actor="ops:bo")
    first = io.StringIO()
    rows = ncii.export_csv("ncii", first)
    # WHEN it is imported into a fresh bank and exported again
    ncii.create_bank("copy", "flag", actor="ops:ana")
    report = ncii.import_csv("copy", first.getvalue(), actor="ops:ana")
    second = io.StringIO()
    ncii.export_csv("copy", second)
    # THEN the files are identical and so is what they describe
    assert rows == 5 and (report.added, report.withdrawn) == (4, 1)
    assert second.getvalue() == first.getvalue()
    assert first.getvalue().splitlines()[0] == "pdq_hash,quality,ref,status,group"

    def view(bank):
        return sorted((e.ref, e.pdq, e.quality, e.status, e.group) for e in ncii.entries(bank))

    assert view("copy") == view("ncii")
    # AND importing the same file again changes nothing
    assert ncii.import_csv("copy", first.getvalue(), actor="ops:ana").counts() == {
        "added": 0, "updated": 0, "unchanged": 5, "withdrawn": 0, "skipped_withdrawn": 0, "skipped_rows": 0}


@FILES_ONLY
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


@FILES_ONLY
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


@FILES_ONLY
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
