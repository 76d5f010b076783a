"""Composite risk, the policy that maps it to an action, replay of old policies and the shadow policy."""

from __future__ import annotations

import json
import typing
from importlib import resources

import pytest
from pydantic import ValidationError

from mediaguard.decisions.history import HistorySnapshot
from mediaguard.decisions.scoring import (
    DEFAULT_POLICY,
    Policy,
    ScoreInputs,
    available_policies,
    load_policy,
    score,
    select_policies,
)
from mediaguard.models import AiMarker, BankKind, C2paInfo, Match, Provenance, ScoreResult

LEGACY = "2026-11-23.2"  # the last policy before per-model classifier keys


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy()


@pytest.fixture(scope="module")
def legacy() -> Policy:
    return load_policy(LEGACY)


def match(kind: str, distance: float = 3, signal: str = "pdq", action: str | None = None,
          bank: str | None = None) -> Match:
    return Match(bank=bank or f"{kind}-bank", kind=kind, ref=f"ref-{kind}-{signal}-{distance}", signal=signal,
                 distance=distance, action=action)


def inputs(nsfw: float = 0.0, *matches: Match, key: str = "open_nsfw.nsfw", **extra) -> ScoreInputs:
    return ScoreInputs(classifier={key: nsfw}, matches=list(matches), **extra)


def by_name(result: ScoreResult) -> dict:
    return {s.name: s for s in result.signals}


def ai_provenance(ai: bool = True, c2pa_state: str = "absent") -> Provenance:
    markers = [AiMarker(source="png-text", value="parameters")] if ai else []
    return Provenance(ai_markers=markers, ai_generated=ai, readers=["png-text"], c2pa=C2paInfo(state=c2pa_state))


# --- the shipped policy files ------------------------------------------------------------------


def test_every_shipped_policy_loads_under_its_own_version():
    # GIVEN every policy file the package has ever shipped
    names = available_policies()
    assert names[:2] == ["policy-2026-11-23.1.json", "policy-2026-11-23.2.json"]
    for name in names:
        # WHEN it is loaded by file name and by the version a decision stamps
        by_file = load_policy(name)
        by_version = load_policy(by_file.version)
        # THEN both give the same policy, with a rule for every bank kind and thresholds high to low
        assert by_file == by_version and name == f"policy-{by_file.version}.json"
        assert set(by_file.banks) == set(typing.get_args(BankKind))
        risks = [t.min_risk for t in by_file.thresholds]
        assert risks == sorted(risks, reverse=True)
    # AND the default is the newest
    assert DEFAULT_POLICY == names[-1]


def test_policy_files_are_never_rewritten_in_place():
    # A decision is replayed by version; editing a shipped file would change past decisions.
    # Pin the two pre-existing files byte for byte (sha256 of their text).
    import hashlib

    folder = resources.files("mediaguard") / "policy"
    digests = {n: hashlib.sha256((folder / n).read_bytes()).hexdigest()[:16] for n in available_policies()[:2]}
    assert digests == {"policy-2026-11-23.1.json": "4f5166cedfab5d8d", "policy-2026-11-23.2.json": "7d88b75eb7bb57b1"}


@pytest.mark.parametrize(
    "name",
    ["../../etc/passwd", "policy-latest.json", "2026-11-23", "policy-2099-01-01.1.json", ""],
)
def test_a_policy_name_that_is_not_shipped_is_refused(name):
    with pytest.raises(ValueError):
        load_policy(name)


def test_settings_pick_the_active_and_the_shadow_policy():
    # GIVEN no names: the default policy and no shadow
    active, shadow = select_policies(None, None)
    assert active.version == load_policy().version and shadow is None
    # WHEN settings name both (as MEDIAGUARD_POLICY / MEDIAGUARD_SHADOW_POLICY would)
    active, shadow = select_policies("policy-2026-11-23.2.json", "2026-11-23.3")
    # THEN each is the named file
    assert (active.version, shadow.version) == ("2026-11-23.2", "2026-11-23.3")
    # AND a misspelt shadow fails at once rather than silently running without one
    with pytest.raises(ValueError):
        select_policies(None, "2026-11-23.9")


@pytest.mark.parametrize(
    "change,complaint",
    [
        pytest.param({"weights": {"classifier.open_nsfw.nsfw": -0.5}}, "weights", id="negative-weight"),
        pytest.param({"weights": {"history.strikes": 0.1}, "ramps": {}}, "ramp", id="history-without-ramp"),
        pytest.param({"banks": {"block": {"contribution": 1.0}, "flag": {}}}, "allow", id="missing-bank-kind"),
        pytest.param({"thresholds": [{"min_risk": 0.3, "acton": "label"}]}, "acton", id="typo-in-threshold"),
        pytest.param({"weigths": {}}, "weigths", id="typo-at-top-level"),
        pytest.param({"ramps": {"history.burst": {"start": 10, "full": 5}}}, "full > start", id="inverted-ramp"),
    ],
)
def test_a_malformed_policy_is_refused_with_the_reason(change, complaint):
    # GIVEN the shipped policy with one mistake an editor could make
    data = json.loads((resources.files("mediaguard") / "policy" / DEFAULT_POLICY).read_text())
    data.update(change)
    # THEN loading it fails and names the problem
    with pytest.raises(ValidationError, match=complaint):
        Policy.model_validate(data)


# --- replay: a legacy policy decides exactly as it did ------------------------------------------


@pytest.mark.parametrize(
    "nsfw,kinds,action",
    [
        # The table the 2026-11-23.2 tests pinned: risk = 0.8 * nsfw (+0.5 per flag match).
        pytest.param(0.0, (), "allow", id="zero"),
        pytest.param(0.3749, (), "allow", id="just-below-label"),
        pytest.param(0.375, (), "label", id="label-at-0.30"),
        pytest.param(0.625, (), "blur", id="blur-at-0.50"),
        pytest.param(0.875, (), "limit", id="limit-at-0.70"),
        pytest.param(1.0, (), "limit", id="limit-classifier-max"),
        pytest.param(0.0, ("flag",), "blur", id="flag-alone"),
        pytest.param(0.4375, ("flag",), "review", id="review-at-0.85"),
        pytest.param(0.5625, ("flag",), "remove", id="remove-at-0.95"),
        pytest.param(0.9, ("flag",), "remove", id="remove-clamped"),
        pytest.param(0.0, ("block",), "remove", id="block-override"),
        pytest.param(0.99, ("block", "allow"), "allow", id="allow-beats-block"),
    ],
)
def test_a_legacy_policy_replays_its_decisions(legacy, nsfw, kinds, action):
    # GIVEN the inputs a 2026-11-23.2 decision recorded (the classifier's score was "nsfw")
    result = score(inputs(nsfw, *(match(k) for k in kinds), key="nsfw"), legacy)
    # THEN the same risk and action come out, stamped with that version
    expected_risk = min(1.0, 0.8 * nsfw + (0.5 if "flag" in kinds else 0) + (1.0 if "block" in kinds else 0))
    assert result.risk == pytest.approx(expected_risk, abs=1e-6)
    assert result.action == action
    assert result.policy_version == LEGACY
    assert result.escalate is False  # legacy policies never escalated


def test_legacy_explicit_bank_entry_action_still_applies(legacy):
    # GIVEN a flag bank (no policy override) whose entry asks for review
    result = score(inputs(0.0, match("flag", action="review"), key="nsfw"), legacy)
    # THEN the entry's action wins over the threshold band (blur), and is explained
    assert result.action == "review"
    assert result.override is not None and "review" in result.override and "flag-bank" in result.override


# --- the current policy ----------------------------------------------------------------------


def test_low_score_and_nothing_else_is_allowed(policy):
    result = score(inputs(0.02), policy)
    assert result.action == "allow" and result.override is None and result.escalate is False
    assert result.risk == pytest.approx(0.016)
    assert result.policy_version == policy.version and result.shadow is None


@pytest.mark.parametrize(
    "nsfw,action",
    [(0.0, "allow"), (0.37, "allow"), (0.375, "label"), (0.625, "blur"), (0.875, "limit"), (1.0, "limit")],
)
def test_classifier_bands_map_to_their_actions(policy, nsfw, action):
    assert score(inputs(nsfw), policy).action == action


def test_every_classifier_score_is_recorded_even_without_a_weight(policy):
    # GIVEN the open_nsfw score and two plugin-model scores the policy has never heard of
    result = score(ScoreInputs(classifier={"open_nsfw.nsfw": 0.5, "plugin_x.violence": 0.99, "plugin_x.gore": 0.2}),
                   policy)
    signals = by_name(result)
    # THEN all three are signals; the unknown ones contribute nothing and say why
    assert set(signals) == {"classifier.open_nsfw.nsfw", "classifier.plugin_x.violence", "classifier.plugin_x.gore"}
    assert signals["classifier.plugin_x.violence"].value == 0.99
    assert signals["classifier.plugin_x.violence"].contribution == 0.0
    assert policy.version in signals["classifier.plugin_x.violence"].note
    assert signals["classifier.open_nsfw.nsfw"].contribution == pytest.approx(0.4)
    assert signals["classifier.open_nsfw.nsfw"].note is None
    assert result.risk == pytest.approx(0.4)


@pytest.mark.parametrize(
    "case",
    [
        inputs(0.0),
        inputs(0.33, provenance=ai_provenance()),
        inputs(1.0, match("flag", 9), match("flag", 0.1, signal="embedding")),
        inputs(0.9, match("block"), match("flag"), history=HistorySnapshot(uploads_last_hour=500, strikes=9)),
        inputs(0.5, match("allow")),
    ],
)
def test_risk_is_the_clamped_sum_of_the_recorded_contributions(policy, case):
    result = score(case, policy)
    assert result.risk == pytest.approx(min(1.0, sum(s.contribution for s in result.signals)), abs=1e-6)
    assert 0.0 <= result.risk <= 1.0


def test_a_bank_kind_counts_once_through_its_strongest_signal(policy):
    # GIVEN one flag-bank entry matched by PDQ and by embedding, another by PDQ further away
    result = score(inputs(0.0, match("flag", 12), match("flag", 0.08, signal="embedding"), match("flag", 4)), policy)
    signals = by_name(result)
    # THEN each (kind, signal) is recorded with its closest distance
    assert signals["bank.flag.pdq"].value == 4
    assert signals["bank.flag.embedding"].value == pytest.approx(0.08)
    # AND the kind contributes once, through PDQ (0.5 beats the embedding's 0.35), the other says so
    assert signals["bank.flag.pdq"].contribution == 0.5
    assert signals["bank.flag.embedding"].contribution == 0.0 and "bank.flag.pdq" in signals["bank.flag.embedding"].note
    assert result.risk == pytest.approx(0.5) and result.action == "blur"


def test_an_embedding_match_alone_weighs_less_than_a_hash_match(policy):
    embedding = score(inputs(0.0, match("flag", 0.05, signal="embedding")), policy)
    assert by_name(embedding)["bank.flag.embedding"].contribution == 0.35
    assert embedding.action == "label"


def test_block_bank_hash_match_removes_and_escalates_whatever_the_classifier_says(policy):
    # GIVEN a clean classifier score but a PDQ match in a block bank
    result = score(inputs(0.0, match("block", 5)), policy)
    # THEN the item is removed and escalated, and the decision says why
    assert (result.action, result.escalate) == ("remove", True)
    assert result.override == "bank.block.pdq match => remove and escalate"


def test_block_match_through_the_embedding_alone_goes_to_escalated_review(policy):
    # An embedding also matches look-alikes: a person decides, quickly, instead of an automatic removal.
    result = score(inputs(0.0, match("block", 0.1, signal="embedding")), policy)
    assert (result.action, result.escalate) == ("review", True)
    # AND with a hash match as well, the most restrictive forced action wins
    both = score(inputs(0.0, match("block", 0.1, signal="embedding"), match("block", 3, signal="pdq_dihedral")), policy)
    assert (both.action, both.escalate) == ("remove", True)
    assert both.override.startswith("bank.block.pdq_dihedral")


def test_allow_bank_match_overrides_a_block_match(policy):
    # GIVEN a verified original (allow bank) that also matches a third-party block bank
    result = score(inputs(0.99, match("block", 2), match("allow", 5)), policy)
    # THEN it is allowed and not escalated: a wrong third-party hash must not take down a verified original
    assert (result.action, result.escalate) == ("allow", False)
    assert result.override.startswith("bank.allow.")


def test_ai_generation_evidence_is_enough_to_label(policy):
    result = score(inputs(0.01, provenance=ai_provenance()), policy)
    assert by_name(result)["provenance.ai_generated"].contribution == policy.weights["provenance.ai_generated"]
    assert result.action == "label"


def test_a_tampered_c2pa_manifest_adds_risk(policy):
    # GIVEN a manifest whose hash no longer matches the pixels, on a borderline picture
    plain = score(inputs(0.3), policy)
    tampered = score(inputs(0.3, provenance=ai_provenance(ai=False, c2pa_state="invalid")), policy)
    # THEN the tampering is a signal of its own and lifts the item into the label band
    assert by_name(tampered)["provenance.c2pa_invalid"].contribution == policy.weights["provenance.c2pa_invalid"]
    assert (plain.action, tampered.action) == ("allow", "label")


def test_absent_provenance_never_lowers_risk(policy):
    for nsfw in (0.1, 0.55, 0.9):
        plain = score(inputs(nsfw), policy)
        unmarked = score(inputs(nsfw, provenance=ai_provenance(ai=False, c2pa_state="valid")), policy)
        assert (unmarked.risk, unmarked.action) == (plain.risk, plain.action)
        assert not any(s.name.startswith("provenance") for s in unmarked.signals)


# --- uploader history -----------------------------------------------------------------------


def test_a_burst_raises_risk_along_its_ramp(policy):
    ramp, weight = policy.ramps["history.burst"], policy.weights["history.burst"]
    # GIVEN uploads in the last hour below, inside and beyond the ramp
    contributions = [
        by_name(score(inputs(0.0, history=HistorySnapshot(uploads_last_hour=n)), policy))["history.burst"].contribution
        for n in (ramp.start, (ramp.start + ramp.full) / 2, ramp.full, ramp.full * 10)
    ]
    # THEN nothing at the start, half the weight halfway, the full weight at and beyond the end
    assert contributions == pytest.approx([0.0, weight / 2, weight, weight])


def test_history_alone_never_acts_on_a_clean_item(policy):
    # GIVEN the worst history there is and a clean picture
    worst = HistorySnapshot(uploads_last_hour=10_000, flagged_last_day=1_000, bank_matches={"block": 50, "flag": 50},
                            strikes=100)
    result = score(inputs(0.0, history=worst), policy)
    # THEN every history signal is recorded and counts, but the item is still allowed
    history = {n: s for n, s in by_name(result).items() if n.startswith("history.")}
    assert set(history) == {"history.burst", "history.flagged", "history.bank_matches", "history.strikes"}
    assert all(s.contribution > 0 for s in history.values())
    assert result.action == "allow"


def test_a_repeat_offender_tips_a_borderline_item_over_a_threshold(policy):
    # GIVEN a borderline classifier score (0.28 risk, just under "label")
    borderline = inputs(0.35)
    assert score(borderline, policy).action == "allow"
    # WHEN the same item comes from an uploader with three strikes
    offender = score(inputs(0.35, history=HistorySnapshot(strikes=3)), policy)
    # THEN it is labelled, and the strikes are the explained difference
    assert offender.action == "label"
    assert by_name(offender)["history.strikes"].contribution == pytest.approx(policy.weights["history.strikes"])


# --- shadow policy ----------------------------------------------------------------------------


def test_shadow_policy_is_recorded_but_never_acts(policy, legacy):
    # GIVEN an active policy and a shadow policy that disagree on a block match through the embedding
    case = inputs(0.0, match("block", 0.1, signal="embedding"))
    alone = score(case, policy)
    # WHEN the item is scored with the shadow beside the active policy
    result = score(case, policy, legacy)
    # THEN the active decision is exactly what it is without a shadow
    assert result.model_dump(exclude={"shadow"}) == alone.model_dump(exclude={"shadow"})
    # AND the shadow's would-be decision is recorded, marked as different
    assert result.shadow.policy_version == LEGACY
    assert (result.shadow.action, result.shadow.escalate, result.shadow.differs) == ("remove", False, True)
    assert result.shadow.risk == 1.0


def test_shadow_that_agrees_is_marked_as_not_differing(policy):
    result = score(inputs(0.9), policy, load_policy("2026-11-23.3"))
    assert result.shadow is not None and result.shadow.differs is False
    assert (result.shadow.action, result.shadow.risk) == (result.action, result.risk)


def test_score_result_survives_a_state_machine_round_trip(policy, legacy):
    # Stages hand results on as plain dicts; the next stage validates them again.
    result = score(inputs(0.7, match("flag"), history=HistorySnapshot(strikes=1)), policy, legacy)
    assert ScoreResult.model_validate(json.loads(json.dumps(result.model_dump()))) == result


def test_classifier_scores_outside_0_to_1_are_refused():
    with pytest.raises(ValidationError):
        ScoreInputs(classifier={"plugin.x": 1.5})
    with pytest.raises(ValidationError):
        ScoreInputs(classifier={"plugin.x": float("nan")})


# --- the detect stage's signals (policy 2026-12-02.1) -------------------------------------------


def test_ai_image_scores_alone_never_act_even_when_certain(policy):
    # GIVEN the AI-image probe certain on the whole frame and on the face (it scored a real
    # motorcycle photo 0.97: a weak signal) and nothing else
    result = score(ScoreInputs(classifier={"open_nsfw.nsfw": 0.0, "aigen.ai": 1.0, "aigen_face.ai": 1.0}, faces=1),
                   policy)
    # THEN it is recorded with its low weight and the item is allowed
    signals = by_name(result)
    assert signals["classifier.aigen.ai"].contribution == pytest.approx(0.1)
    assert signals["classifier.aigen_face.ai"].contribution == pytest.approx(0.1)
    assert result.risk == pytest.approx(0.2) and result.action == "allow"


def test_ai_image_scores_add_to_other_evidence(policy):
    # GIVEN a borderline explicit score just under the label threshold (0.8 x 0.35 = 0.28)
    base = score(ScoreInputs(classifier={"open_nsfw.nsfw": 0.35}), policy)
    # WHEN the AI-image probe also fires
    both = score(ScoreInputs(classifier={"open_nsfw.nsfw": 0.35, "aigen.ai": 0.9}), policy)
    # THEN the two together cross it
    assert (base.action, both.action) == ("allow", "label")


def test_faces_are_recorded_as_presence_and_count_without_weight(policy):
    result = score(inputs(0.1, faces=3), policy)
    signals = by_name(result)
    assert signals["faces.present"].value == 1.0 and signals["faces.present"].contribution == 0.0
    assert signals["faces.count"].value == 3.0 and signals["faces.count"].contribution == 0.0
    assert by_name(score(inputs(0.1, faces=0), policy))["faces.present"].value == 0.0
    # AND a decision from before the detect stage records neither
    assert "faces.present" not in by_name(score(inputs(0.1), policy))


def test_a_face_count_weight_needs_a_ramp():
    data = json.loads((resources.files("mediaguard") / "policy" / DEFAULT_POLICY).read_text())
    data["weights"]["faces.count"] = 0.1
    with pytest.raises(ValidationError, match="faces.count"):
        Policy.model_validate(data)


# --- CLIP bank matches (policy 2026-12-02.2) ----------------------------------------------------------


@pytest.mark.parametrize("version", [None, "2026-12-02.1"])
def test_a_clip_match_on_a_block_bank_goes_to_review_escalated_never_removal(version):
    # GIVEN the default policy, and the one before it that predates clip matches
    policy = load_policy(version) if version else load_policy()
    # WHEN an upload matches a block bank by CLIP embedding only
    result = score(inputs(0.0, match("block", 0.08, signal="clip")), policy)
    # THEN it goes to people, escalated, like an open_nsfw embedding match: a likeness is not proof
    assert (result.action, result.escalate) == ("review", True)
    assert "bank.block.clip" in result.override
    assert by_name(result)["bank.block.clip"].contribution == pytest.approx(0.6)


def test_a_clip_match_weighs_like_an_embedding_match_and_a_kind_counts_once(policy):
    assert policy.version == "2026-12-02.2"
    # GIVEN a flag-bank entry matched by both embeddings
    result = score(inputs(0.0, match("flag", 0.07, signal="clip"), match("flag", 0.09, signal="embedding")), policy)
    signals = by_name(result)
    # THEN the flag kind contributes 0.35 once; the other signal is recorded with 0 and a note
    assert sum(s.contribution for n, s in signals.items() if n.startswith("bank.flag.")) == pytest.approx(0.35)
    assert result.action == "label"
