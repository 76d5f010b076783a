"""The rules a BankService keeps over any BankStore, written once.

``tests/unit/test_banks.py`` runs them over the local file store and
``tests/functional/test_bank_store_dynamodb.py`` over DynamoDB (moto, tables as
template.yaml declares them). A test module that subclasses :class:`BankServiceContract`
provides the ``clock``, ``svc`` (a BankService over its store) and ``ncii`` (``svc`` with
an empty block bank named ncii) fixtures.
"""

from __future__ import annotations

import io
from datetime import timedelta

import numpy as np
import pytest

from mediaguard.analysis.banks.errors import BankNotFoundError, EntryWithdrawnError
from mediaguard.analysis.banks.model import Features, NewEntry
from mediaguard.analysis.banks.service import BankService
from mediaguard.analysis.index import PdqIndex
from tests.fakes import T0

H1 = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
H2 = "0f" * 32
H3 = "a5f05ba8a4896a17c106a3da5aaaab07b61b5b42f8fc07fc83c3d0740bfcb0fa"


def near(pdq: str, bits: int) -> str:
    """``pdq`` with its lowest ``bits`` bits flipped."""
    return f"{int(pdq, 16) ^ ((1 << bits) - 1):064x}"


def pdq_rows(svc: BankService) -> dict[str, str]:
    return {e.ref: e.value for e in svc.active_entries() if e.signal == "pdq"}


class BankServiceContract:
    """Store-independent rules: banks, add/confirm/withdraw, video frames, the delta the
    matcher polls, re-checks, deletion and the CSV round trip."""

    def test_banks_carry_kind_thresholds_and_action_to_the_matcher(self, svc):
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

    def test_add_is_idempotent_and_a_changed_hash_needs_confirming_again(self, ncii, clock):
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

    def test_confirm_records_who_and_when_without_touching_the_delta(self, ncii, clock):
        ncii.add_entries("ncii", [NewEntry(ref="case-1", value=H1)], actor="importer")
        clock.tick(60)
        (confirmed,) = ncii.confirm("ncii", "case-1", actor="ops:bo")
        (stored,) = ncii.entries("ncii")
        assert (stored.confirmed_by, stored.confirmed_at) == ("ops:bo", T0 + timedelta(seconds=60)) == \
            (confirmed.confirmed_by, confirmed.confirmed_at)
        # a confirmation changes nothing a matcher sees, so it does not show up as a change
        assert stored.updated_at == T0
        assert ncii.changed_since((T0 + timedelta(seconds=1)).timestamp()) == []

    def test_withdraw_deletes_the_hash_at_once_and_keeps_a_tombstone(self, ncii, clock):
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

    def test_a_withdrawn_ref_is_never_revived_by_a_later_import(self, ncii):
        ncii.add_entries("ncii", [NewEntry(ref="case-1", value=H1)], actor="importer")
        ncii.withdraw("ncii", "case-1", actor="ops:bo")
        report = ncii.add_entries("ncii", [NewEntry(ref="case-1", value=H1)], actor="importer")
        assert (report.added, report.skipped_withdrawn) == (0, 1)
        assert pdq_rows(ncii) == {}
        with pytest.raises(EntryWithdrawnError):
            ncii.confirm("ncii", "case-1", actor="ops:bo")
        assert ncii.withdraw("ncii", "case-1", actor="ops:bo") == []  # already withdrawn: nothing to do

    def test_add_media_banks_a_video_as_frames_of_one_group(self, ncii, clock):
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

    def test_a_clip_embedding_is_stored_indexed_and_withdrawn_beside_the_others(self, ncii, clock):
        # GIVEN a photo featurized with a PDQ, open_nsfw's embedding and CLIP's
        rng = np.random.default_rng(11)
        clip = rng.normal(size=512)
        ncii.add_media("ncii", "p-1", [Features(pdq=H1, quality=90, embedding=rng.normal(size=64), clip=clip)],
                       actor="ops:ana")
        # THEN the entry names three signals and the matcher gets one row for each
        (stored,) = [e for e in ncii.entries("ncii") if e.ref == "p-1"]
        assert stored.signals == ("pdq", "embedding", "clip") and "clip" not in stored.to_dict()
        rows = {r.signal: r.value for r in ncii.active_entries()}
        assert sorted(rows) == ["clip", "embedding", "pdq"]
        assert float(np.dot(rows["clip"], clip / np.linalg.norm(clip))) > 0.999
        # AND banking the same features again changes nothing
        assert ncii.add_media("ncii", "p-1", [Features(pdq=H1, quality=90, embedding=stored.embedding,
                                                       clip=stored.clip)], actor="ops:ana").unchanged == 1
        # WHEN it is withdrawn THEN the CLIP vector goes with the rest, and the delta says so
        clock.tick()
        ncii.withdraw("ncii", "p-1", actor="ops:bo")
        (tomb,) = [e for e in ncii.entries("ncii") if e.ref == "p-1"]
        assert tomb.clip is None and tomb.embedding is None and tomb.pdq is None
        assert sorted((c.signal, c.active) for c in ncii.changed_since(clock.now.timestamp())) == [
            ("clip", False), ("embedding", False), ("pdq", False)]

    def test_re_adding_a_shorter_version_of_a_video_drops_the_extra_frames(self, ncii, clock):
        ncii.add_media("ncii", "vid", [Features(pdq=near(H1, i + 1), quality=90) for i in range(4)], actor="ops:ana")
        clock.tick()
        ncii.add_media("ncii", "vid", [Features(pdq=near(H1, i + 1), quality=90) for i in range(2)], actor="ops:ana")
        assert sorted(pdq_rows(ncii)) == ["vid#0", "vid#1"]
        assert sorted(c.ref for c in ncii.changed_since(clock.now.timestamp()) if not c.active) == ["vid#2", "vid#3"]

    def test_changed_since_returns_adds_and_withdrawals_from_that_moment_on(self, ncii, clock):
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

    def test_deleting_a_bank_drops_its_entries_everywhere_even_if_the_name_returns(self, ncii, clock):
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

    def test_recheck_reports_current_bank_settings_for_active_entries_only(self, svc):
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

    def test_export_then_import_round_trips_exactly(self, ncii, clock):
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
