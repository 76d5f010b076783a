"""The CLI contract, exercised as a user runs it: a subprocess, stdout parsed line by line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import exif_with_gps, jpeg_bytes, photo

CONTRACT_FIELDS = {"file", "media_id", "status", "action", "risk", "signals", "fingerprints", "matches", "error",
                   "states"}
ACTIONS = {"allow", "label", "blur", "limit", "remove", "review"}


def mediaguard(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mediaguard.cli", *args], capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli")
    bank = root / "bank"
    bank.mkdir()
    photo("chelsea").save(bank / "known-1.png")
    out = {"bank": bank}
    out["match"] = root / "chelsea-copy.jpg"
    out["match"].write_bytes(jpeg_bytes(photo("chelsea").resize((225, 150)), quality=70))
    out["clean"] = root / "coffee.jpg"
    out["clean"].write_bytes(jpeg_bytes(photo("coffee"), exif=exif_with_gps()))
    out["broken"] = root / "broken.jpg"
    out["broken"].write_bytes(b"\xff\xd8\xff\xe0 definitely not a complete jpeg")
    return out


def test_scan_json_emits_one_contract_object_per_input(files):
    # GIVEN a flag bank built from a folder, and three inputs (a match, a clean photo, a broken file)
    result = mediaguard("scan", "--json", "--bank", f"deepfakes:flag={files['bank']}",
                        str(files["match"]), str(files["clean"]), str(files["broken"]))
    # THEN every input got a result (exit 0), stdout holds only JSON lines, in input order
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [Path(r["file"]).name for r in lines] == ["chelsea-copy.jpg", "coffee.jpg", "broken.jpg"]
    for r in lines:
        assert CONTRACT_FIELDS <= set(r)
        assert r["status"] in {"done", "rejected", "failed"} and r["action"] in ACTIONS
        assert 0.0 <= r["risk"] <= 1.0
        assert all({"name", "value", "contribution"} <= set(s) for s in r["signals"])
    match, clean, broken = lines
    assert match["matches"][0]["bank"] == "deepfakes" and match["matches"][0]["distance"] <= 31
    assert {"bank", "ref", "distance"} <= set(match["matches"][0])
    assert match["action"] != "allow"
    assert clean["status"] == "done" and clean["error"] is None and clean["matches"] == []
    assert set(clean["fingerprints"]) >= {"sha256", "pdq", "pdq_quality", "phash"}
    assert "exif" in clean["metadata_removed"]
    assert "Sanitize" in clean["states"] and clean["states"][-1] == "Done"
    assert broken["status"] == "rejected" and broken["error"]["type"] == "CorruptMediaError"
    assert broken["states"][-1] == "Rejected"
    # AND the progress bar went to stderr, never to stdout
    assert "3/3" in result.stderr


def test_hash_json_uses_the_scan_field_names(files):
    result = mediaguard("hash", "--json", str(files["clean"]))
    assert result.returncode == 0, result.stderr
    (record,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert set(record["fingerprints"]) == {"sha256", "pdq", "pdq_quality", "phash"}
    assert record["error"] is None


def test_hash_and_scan_agree_on_fingerprints(files):
    hashed = json.loads(mediaguard("hash", "--json", str(files["clean"])).stdout)
    scanned = json.loads(mediaguard("scan", "--json", str(files["clean"])).stdout)
    assert hashed["fingerprints"] == scanned["fingerprints"]


def test_sanitize_writes_the_pipeline_output_and_reports_what_was_removed(files, tmp_path):
    out = tmp_path / "clean.jpg"
    result = mediaguard("sanitize", str(files["clean"]), str(out))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["method"] == "jpeg-segments" and "exif" in report["metadata_removed"]
    assert b"Exif" not in out.read_bytes()
    assert report["sha256_out"] != report["sha256_in"]


def test_bad_bank_spec_is_a_usage_error(files):
    result = mediaguard("scan", "--bank", "no-path-given", str(files["clean"]))
    assert result.returncode == 2 and "NAME[:KIND]=PATH" in result.stderr


def test_scan_json_reports_a_clip_match_with_its_signal(tmp_path):
    # GIVEN a block bank holding retina, and a 75 % centre crop of it (PDQ and open_nsfw's
    # embedding lose it: 0.856 < 0.90; CLIP keeps it: 0.982 >= 0.95) and an unrelated photo
    from bench.corpus import centre_crop

    bank = tmp_path / "bank"
    bank.mkdir()
    photo("retina").save(bank / "victim-1.png")
    crop, other = tmp_path / "retina-crop.jpg", tmp_path / "coffee.jpg"
    crop.write_bytes(jpeg_bytes(centre_crop(photo("retina"), 0.75), quality=90))
    other.write_bytes(jpeg_bytes(photo("coffee")))
    # WHEN both are scanned
    result = mediaguard("scan", "--json", "--bank", f"victims:block={bank}", str(crop), str(other))
    assert result.returncode == 0, result.stderr[-2000:]
    cropped, unrelated = [json.loads(line) for line in result.stdout.splitlines()]
    # THEN the crop's match names the clip signal, in the contract's fields, and goes to review
    assert CONTRACT_FIELDS <= set(cropped)
    (match,) = cropped["matches"]
    assert (match["bank"], match["signal"]) == ("victims", "clip") and match["distance"] <= 0.05
    assert cropped["action"] == "review"
    # AND the unrelated photo matches nothing
    assert unrelated["matches"] == [] and unrelated["status"] == "done"


def test_scan_jobs_keeps_input_order_and_gives_the_results_of_one_at_a_time(files, tmp_path):
    # GIVEN twelve different inputs: photos in three formats and sizes, a banked picture's
    # copy, a broken file (a rejection mid-list)
    from bench.corpus import PHOTOS, colour

    inputs = []
    for i, name in enumerate(PHOTOS[:10]):
        img = photo(name) if i % 2 else colour(photo(name))
        img = img.resize((img.width * 2 // (1 + i % 3), img.height * 2 // (1 + i % 3)))
        ext = ("jpg", "png", "webp")[i % 3]
        path = tmp_path / f"{i:02d}-{name}.{ext}"
        img.save(path, **({} if ext == "png" else {"quality": 85}))
        inputs.append(path)
    inputs[3:3] = [files["match"]]
    inputs[7:7] = [files["broken"]]
    bank = f"deepfakes:flag={files['bank']}"

    # WHEN they are scanned one at a time and four at a time through the local stack
    serial = mediaguard("scan", "--json", "--jobs", "1", "--bank", bank, *map(str, inputs))
    parallel = mediaguard("scan", "--json", "--jobs", "4", "--bank", bank, *map(str, inputs))

    # THEN both list the inputs in the order given, and agree on everything but the upload id
    assert serial.returncode == 0 and parallel.returncode == 0, parallel.stderr[-2000:]
    one, four = ([json.loads(line) for line in r.stdout.splitlines()] for r in (serial, parallel))
    assert [r["file"] for r in four] == [r["file"] for r in one] == [str(p) for p in inputs]
    assert len({r["media_id"] for r in four}) == len(inputs)
    assert [{k: v for k, v in r.items() if k != "media_id"} for r in four] == \
           [{k: v for k, v in r.items() if k != "media_id"} for r in one]
    # AND the mix really was mixed: a match, a rejection, and finished scans
    assert {r["status"] for r in four} == {"done", "rejected"}
    assert any(r["matches"] for r in four)


def test_an_unreadable_input_gets_every_key_of_the_contract(tmp_path):
    from mediaguard.cli.scan import scan_file, scan_result

    # GIVEN a path that cannot be read WHEN it is scanned (nothing reaches the stack)
    result, item = scan_file(None, tmp_path / "missing.jpg")
    # THEN it is a failed result with the same keys as any other (it lacked media_type,
    # frames, audio, provenance and faces), audio absent, the reason typed
    assert set(result) == set(scan_result("x", "m", {}, [])) and item == {}
    assert (result["status"], result["action"], result["error"]["reason"]) == ("failed", "review", "unreadable")
    assert result["audio"] == {"present": False, "codec": None, "duration_s": None, "fingerprint_kind": None}
