"""Composite risk and the policy that maps it to an action, using the shipped policy."""

from __future__ import annotations

import typing

import pytest

from mediaguard.models import BankKind, ClassifyResult, Match, ScoreResult, SimilarityResult
from mediaguard.scoring import DEFAULT_POLICY, load_policy, score


@pytest.fixture(scope="module")
def policy():
    return load_policy()


def classified(nsfw: float) -> ClassifyResult:
    return ClassifyResult(nsfw=nsfw, model_id="opennsfw2", model_sha256="0" * 64)


def match(kind: str, distance: int = 3, action: str | None = None, bank: str | None = None) -> Match:
    return Match(
        bank=bank or f"{kind}-bank", kind=kind, ref=f"ref-{kind}-{distance}", signal="pdq", distance=distance, action=action
    )


def similar(*matches: Match) -> SimilarityResult:
    return SimilarityResult(matches=list(matches), banks_checked=3)


def test_shipped_policy_covers_every_bank_kind_and_sorts_thresholds(policy):
    assert policy.version == "2026-11-23.2"
    assert DEFAULT_POLICY == f"policy-{policy.version}.json"
    assert set(policy.bank_contributions) == set(typing.get_args(BankKind))
    assert "classifier.nsfw" in policy.weights
    risks = [t.min_risk for t in policy.thresholds]
    assert risks == sorted(risks, reverse=True)


def test_low_nsfw_and_no_matches_is_allowed(policy):
    # GIVEN a benign classifier score and no bank matches
    result = score(classified(0.02), similar(), policy)
    # THEN the item is allowed without an override, and the decision names its policy
    assert result.action == "allow"
    assert result.override is None
    assert result.risk == pytest.approx(0.016)
    assert result.policy_version == policy.version


@pytest.mark.parametrize(
    "nsfw,matches,action",
    [
        # Classifier alone: risk = 0.8 * nsfw, so it tops out in the "limit" band.
        pytest.param(0.0, (), "allow", id="zero"),
        pytest.param(0.3749, (), "allow", id="just-below-label"),
        pytest.param(0.375, (), "label", id="label-at-0.30"),
        pytest.param(0.5, (), "label", id="label-inside"),
        pytest.param(0.625, (), "blur", id="blur-at-0.50"),
        pytest.param(0.75, (), "blur", id="blur-inside"),
        pytest.param(0.875, (), "limit", id="limit-at-0.70"),
        pytest.param(1.0, (), "limit", id="limit-classifier-max"),
        # A flag-bank match adds 0.5 and has no override, so thresholds still decide.
        pytest.param(0.0, ("flag",), "blur", id="flag-alone"),
        pytest.param(0.4375, ("flag",), "review", id="review-at-0.85"),
        pytest.param(0.5, ("flag",), "review", id="review-inside"),
        pytest.param(0.5625, ("flag",), "remove", id="remove-at-0.95"),
        pytest.param(0.9, ("flag",), "remove", id="remove-clamped"),
    ],
)
def test_each_risk_band_maps_to_its_action(policy, nsfw, matches, action):
    # GIVEN a classifier score (and maybe a flag-bank match) that lands in one band
    result = score(classified(nsfw), similar(*(match(k) for k in matches)), policy)
    # THEN the band's action is chosen, by threshold rather than by override
    assert result.action == action
    assert result.override is None


def test_every_threshold_action_is_reachable(policy):
    # GIVEN the scores of the band table above
    reached = {
        score(classified(nsfw), similar(*(match(k) for k in ks)), policy).action
        for nsfw, ks in [(0.0, ()), (0.4, ()), (0.7, ()), (0.9, ()), (0.5, ("flag",)), (0.9, ("flag",))]
    }
    # THEN every action the policy names, and allow, occurs
    assert reached == {t.action for t in policy.thresholds} | {"allow"}


@pytest.mark.parametrize(
    "nsfw,matches",
    [(0.0, ()), (0.33, ()), (1.0, ()), (0.4, ("flag",)), (0.9, ("flag",)), (0.9, ("block", "flag")), (0.5, ("allow",))],
)
def test_risk_is_the_clamped_sum_of_the_signal_contributions(policy, nsfw, matches):
    result = score(classified(nsfw), similar(*(match(k) for k in matches)), policy)
    total = sum(s.contribution for s in result.signals)
    assert result.risk == pytest.approx(min(1.0, total), abs=1e-6)
    assert 0.0 <= result.risk <= 1.0


def test_every_signal_explains_its_value_and_contribution(policy):
    # GIVEN a classifier score and matches from two bank kinds, one of them twice
    result = score(
        classified(0.25),
        similar(match("flag", 9), match("block", 12), match("block", 4, bank="other-block-bank")),
        policy,
    )
    # THEN there is one signal per source, each with a name, the raw value and its contribution
    by_name = {s.name: s for s in result.signals}
    assert set(by_name) == {"classifier.nsfw", "bank.block", "bank.flag"}
    assert len(result.signals) == 3
    assert by_name["classifier.nsfw"].value == 0.25
    assert by_name["classifier.nsfw"].contribution == pytest.approx(policy.weights["classifier.nsfw"] * 0.25)
    # AND a bank's value is its closest match, counted once however many entries matched
    assert by_name["bank.block"].value == 4
    assert by_name["bank.block"].contribution == policy.bank_contributions["block"]
    assert by_name["bank.flag"].value == 9
    assert by_name["bank.flag"].contribution == policy.bank_contributions["flag"]
    assert all(isinstance(s.name, str) and s.name for s in result.signals)


def test_block_bank_match_removes_whatever_the_classifier_says(policy):
    # GIVEN a clean classifier score but a match in a block bank
    result = score(classified(0.0), similar(match("block")), policy)
    # THEN the item is removed, and the decision says why
    assert result.action == "remove"
    assert result.override is not None and "block" in result.override and "remove" in result.override


def test_allow_bank_match_overrides_a_block_match(policy):
    # GIVEN a verified original (allow bank) that also matches a third-party block bank
    result = score(classified(0.99), similar(match("block", 2), match("allow", 5)), policy)
    # THEN it is allowed: a wrong third-party hash must not take down a verified original
    assert result.action == "allow"
    assert result.override is not None and "allow" in result.override


def test_explicit_bank_action_applies_when_no_override_covers_the_bank(policy):
    # GIVEN a flag bank (no policy override) whose entry asks for review
    result = score(classified(0.0), similar(match("flag", action="review")), policy)
    # THEN the entry's action wins over the threshold band (blur), and is explained
    assert result.action == "review"
    assert result.override is not None and "review" in result.override


def test_policy_version_is_stamped_on_every_decision(policy):
    results = [
        score(classified(0.1), similar(), policy),
        score(classified(0.9), similar(match("block")), policy),
        score(classified(0.5), similar(match("allow")), policy),
    ]
    assert {r.policy_version for r in results} == {"2026-11-23.2"}
    assert all(isinstance(r, ScoreResult) for r in results)


def test_score_result_survives_a_state_machine_round_trip(policy):
    # Stages hand results on as plain dicts; the next stage validates them again.
    result = score(classified(0.7), similar(match("flag")), policy)
    assert ScoreResult.model_validate(result.model_dump()) == result


def _provenance(ai: bool):
    from mediaguard.forensics import AiMarker, Provenance

    markers = [AiMarker(source="png-text", value="parameters")] if ai else []
    return Provenance(ai_markers=markers, ai_generated=ai, readers=["png-text"])


def test_ai_generation_evidence_is_enough_to_label(policy):
    # GIVEN a harmless picture whose metadata says a diffusion model made it
    result = score(classified(0.01), similar(), policy, _provenance(True))
    # THEN the provenance signal is explained and the picture is labelled, not removed
    signal = next(s for s in result.signals if s.name == "provenance.ai_generated")
    assert signal.contribution == policy.weights["provenance.ai_generated"]
    assert result.action == "label"


def test_absent_provenance_never_lowers_risk(policy):
    # Provenance is positive-only: no marker (or no forensics at all) takes nothing away.
    for nsfw in (0.1, 0.55, 0.9):
        plain = score(classified(nsfw), similar(), policy)
        unmarked = score(classified(nsfw), similar(), policy, _provenance(False))
        assert unmarked.risk == plain.risk and unmarked.action == plain.action
        assert not any(s.name.startswith("provenance") for s in unmarked.signals)
