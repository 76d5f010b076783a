"""``mediaguard bank`` driven through argparse as the ``mediaguard`` parser wires it: a local
bank directory in a temp dir, and a deployed stack's tables on moto CloudFormation."""

from __future__ import annotations

import argparse
import csv
import io
import json

import pytest
from moto import mock_aws

from mediaguard.adapters import tables
from mediaguard.analysis.banks.model import Features
from mediaguard.analysis.banks.validation import pdq_ref
from mediaguard.audit.chain import verify
from mediaguard.cli.bank import add_bank_parser, run_bank
from mediaguard.local.template import load_template
from tests.conftest import REPO, jpeg_bytes, photo
from tests.fakes import Lines

H1 = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
H2 = "a5f05ba8a4896a17c106a3da5aaaab07b61b5b42f8fc07fc83c3d0740bfcb0fa"


def mediaguard_bank(*argv: str, featurizer=None) -> tuple[int, list[str]]:
    parser = argparse.ArgumentParser(prog="mediaguard")
    add_bank_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["bank", *argv])
    out = Lines()
    return run_bank(args, out, featurizer=featurizer), out.lines


def as_json(lines: list[str]) -> list[dict]:
    return [json.loads(line) for line in lines]


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDIAGUARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MEDIAGUARD_ACTOR", "ops:ana")
    return tmp_path


def test_a_bank_from_creation_to_withdrawal(home, capsys):
    # GIVEN a folder with two photos and a file that is not an image
    media = home / "submitted"
    media.mkdir()
    (media / "jane-doe-1.jpg").write_bytes(jpeg_bytes(photo("astronaut")))
    photo("coffee").save(media / "jane-doe-2.png")
    (media / "notes.jpg").write_bytes(b"not an image at all")

    # WHEN a block bank is created and the folder added with the default featurizer
    code, lines = mediaguard_bank("create", "ncii", "--kind", "block", "--action", "remove", "--json")
    assert code == 0 and as_json(lines)[0]["kind"] == "block" and as_json(lines)[0]["created_by"] == "ops:ana"
    code, lines = mediaguard_bank("add", "ncii", str(media), "--json")
    added = {r["file"].rsplit("/", 1)[-1]: r for r in as_json(lines)}
    # THEN the photos are banked under digests (never their file names), the bad file fails, exit 1
    assert code == 1
    assert [added[n]["status"] for n in ("jane-doe-1.jpg", "jane-doe-2.png", "notes.jpg")] == [
        "added", "added", "failed"]
    assert added["notes.jpg"]["error"]["reason"] == "unsupported_media_type"
    refs = [added[n]["ref"] for n in ("jane-doe-1.jpg", "jane-doe-2.png")]
    assert all(r.startswith("m-") and "jane" not in r for r in refs)
    # AND adding the same files again changes nothing
    code, lines = mediaguard_bank("add", "ncii", str(media / "jane-doe-1.jpg"), "--json")
    assert code == 0 and as_json(lines)[0]["status"] == "unchanged"

    # WHEN a StopNCII-shaped CSV is imported
    hashes = home / "stopncii.csv"
    hashes.write_text(f"signalType,hashValue,hashStatus\nImagePDQ,{H1},Active\nVideoMD5,{'0' * 32},Active\n")
    code, lines = mediaguard_bank("import", "ncii", str(hashes), "--json")
    assert code == 0 and (as_json(lines)[0]["added"], as_json(lines)[0]["skipped_rows"]) == (1, 1)

    # THEN list --counts shows three active entries
    code, lines = mediaguard_bank("list", "--counts", "--json")
    assert [(b["name"], b["entries"]) for b in as_json(lines)] == [("ncii", {"active": 3, "withdrawn": 0})]

    # WHEN an entry is confirmed by one person and another withdrawn by someone else
    code, lines = mediaguard_bank("confirm", "ncii", refs[0], "--json", "--actor", "ops:bo")
    assert code == 0 and as_json(lines)[0]["confirmed_by"] == "ops:bo"
    code, lines = mediaguard_bank("withdraw", "ncii", pdq_ref(H1), "--json", "--actor", "ops:cy")
    assert code == 0 and as_json(lines)[0]["withdrawn_by"] == "ops:cy"

    # THEN the export holds the two photos and a tombstone without the withdrawn hash
    out_file = home / "export.csv"
    code, lines = mediaguard_bank("export", "ncii", "-o", str(out_file))
    rows = list(csv.DictReader(io.StringIO(out_file.read_text())))
    assert code == 0 and "3 rows" in lines[0]
    assert sorted(r["status"] for r in rows) == ["active", "active", "withdrawn"]
    assert H1 not in out_file.read_text()
    assert {r["ref"] for r in rows if r["status"] == "active"} == set(refs)
    # AND stdout export is the same CSV
    code, lines = mediaguard_bank("export", "ncii")
    assert "\n".join(lines) + "\n" == out_file.read_text()
    # AND nothing the commands printed on stderr names a file's contents
    assert H1 not in capsys.readouterr().err

    # WHEN the bank is deleted
    code, lines = mediaguard_bank("delete", "ncii", "--json")
    assert code == 0 and as_json(lines)[0]["entries"] == 3
    code, lines = mediaguard_bank("list", "--json")
    assert lines == []


def test_a_video_featurizer_banks_frames_that_withdraw_as_one(home):
    # GIVEN an injected featurizer (the lead's: PDQ + embedding per frame) that sees 3 frames
    def featurize(data: bytes, declared: str | None) -> list[Features]:
        return [Features(pdq=f"{int(H2, 16) ^ n:064x}", quality=90, embedding=[1.0, float(n), 0.5]) for n in range(3)]

    clip = home / "clip.mp4"
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(64))
    mediaguard_bank("create", "deepfakes", "--kind", "flag", "--embedding-threshold", "0.9")
    code, lines = mediaguard_bank("add", "deepfakes", str(clip), "--ref-from", "name", "--json", featurizer=featurize)
    assert code == 0 and as_json(lines)[0] == {"file": str(clip), "ref": "clip", "status": "added", "entries": 3,
                                               "error": None}
    # WHEN the video is withdrawn by its name, every frame goes
    code, lines = mediaguard_bank("withdraw", "deepfakes", "clip", "--json")
    assert code == 0 and sorted(r["ref"] for r in as_json(lines)) == ["clip#0", "clip#1", "clip#2"]
    code, lines = mediaguard_bank("withdraw", "deepfakes", "clip", "--json")
    assert code == 0 and as_json(lines) == [{"bank": "deepfakes", "ref": "clip", "status": "withdrawn",
                                             "changed": False}]


def test_invalid_requests_exit_2_and_change_nothing(home, capsys):
    mediaguard_bank("create", "ncii", "--kind", "block")
    bad = home / "bad.csv"
    bad.write_text(f"pdq_hash,quality\n{H1},90\n{H2[:40]},90\n")
    # WHEN a CSV with a bad third row is imported
    code, lines = mediaguard_bank("import", "ncii", str(bad), "--json")
    # THEN exit 2, the error names the row (not its contents), and the good row was not imported either
    assert code == 2
    assert as_json(lines)[0]["error"]["reason"] == "invalid_pdq"
    err = capsys.readouterr().err
    assert "row 3" in err and H2[:40] not in err and H1 not in err
    assert as_json(mediaguard_bank("list", "--counts", "--json")[1])[0]["entries"]["active"] == 0
    # AND unknown banks, taken names and unknown refs are usage errors too
    assert mediaguard_bank("add", "nope", str(bad))[0] == 2
    assert mediaguard_bank("create", "ncii", "--kind", "flag")[0] == 2
    assert mediaguard_bank("withdraw", "ncii", "no-such-ref")[0] == 2
    assert mediaguard_bank("import", "ncii", str(home / "missing.csv"))[0] == 2
    with pytest.raises(SystemExit):  # argparse: a kind that does not exist
        mediaguard_bank("create", "x", "--kind", "maybe")


def test_store_dir_overrides_the_default(home):
    store = home / "elsewhere"
    assert mediaguard_bank("create", "ncii", "--kind", "allow", "--store", str(store))[0] == 0
    assert (store / "ncii" / "bank.json").is_file()
    assert mediaguard_bank("list")[1] == []  # MEDIAGUARD_HOME's store is still empty


@pytest.fixture
def deployed_stack(monkeypatch):
    """The template's bank and audit tables, deployed by moto's CloudFormation."""
    names = {m: m.Meta.table_name for m in tables.MODELS.values()}
    resources = load_template(REPO / "template.yaml")["Resources"]
    template = {"Resources": {k: resources[k] for k in ("BanksTable", "BankEntriesTable", "AuditTable", "AuditHeadTable")}}
    with mock_aws():
        import boto3

        boto3.client("cloudformation", region_name="eu-west-1").create_stack(
            StackName="mg-prod", TemplateBody=json.dumps(template))
        yield boto3.client("dynamodb", region_name="eu-west-1")
    for model, name in names.items():
        model.Meta.table_name = name
        model._connection = None


def test_stack_mode_administers_the_deployed_tables(deployed_stack, home):
    ddb = deployed_stack
    stack = ["--stack", "mg-prod", "--region", "eu-west-1"]
    # WHEN a bank is created and filled in the deployed stack
    assert mediaguard_bank("create", "ncii", "--kind", "block", *stack)[0] == 0
    hashes = home / "tx.csv"
    hashes.write_text(f"collab,signal_type,signal_str,category,tags\nSample,pdq,{H1},INVESTIGATION_SEED,\n")
    code, lines = mediaguard_bank("import", "ncii", str(hashes), "--json", *stack)
    assert code == 0 and as_json(lines)[0]["added"] == 1
    # THEN the entry sits in the stack's own table, in the GSI the similarity stage polls
    entries_table = next(t for t in ddb.list_tables()["TableNames"] if "BankEntriesTable" in t)
    (item,) = ddb.scan(TableName=entries_table)["Items"]
    assert item["value"]["S"] == H1 and item["shard"]["S"] in {str(i) for i in range(8)}
    polled = ddb.query(TableName=entries_table, IndexName="updated", KeyConditionExpression="shard = :s",
                       ExpressionAttributeValues={":s": item["shard"]})
    assert polled["Count"] == 1
    # AND the stack's audit table holds a verifiable chain of what was done
    from mediaguard.adapters.aws import DynamoItemStore
    from mediaguard.adapters.banks import stack_settings

    chain = DynamoItemStore(stack_settings("mg-prod", "eu-west-1")).audit_chain("bank:ncii")
    assert [r.event for r in chain] == ["bank_created", "entries_added"] and verify(chain) == []
    # AND nothing was written locally
    assert not (home / "home").exists()
    # AND a stack that does not exist is a usage error
    assert mediaguard_bank("list", "--stack", "nope", "--region", "eu-west-1")[0] == 2
