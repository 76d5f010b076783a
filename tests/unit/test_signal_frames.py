"""The frame behind each score: what the console marks in a video's frames strip."""

from __future__ import annotations

from mediaguard.models import ScoreInput


def _scores(batch: int, keys: list[str], values: list[dict[str, float]]) -> dict:
    return {"batch": batch, "models": [], "frames": [{"key": k, "scores": v} for k, v in zip(keys, values, strict=True)]}


def test_each_score_points_at_the_frame_that_gave_its_maximum_in_batch_order():
    # GIVEN two batches of classifier scores (given out of order, as a Map may finish them)
    # and the detect stage's scores of the same frames
    keys = [f"frames/m/{n}.jpg" for n in range(5)]
    request = ScoreInput.model_validate({
        "media_id": "m", "similarity": {"matches": [], "banks_checked": 0},
        "classify": [_scores(1, keys[3:], [{"nsfw": 0.2}, {"nsfw": 0.9}]),
                     _scores(0, keys[:3], [{"nsfw": 0.1}, {"nsfw": 0.3}, {"nsfw": 0.9}])],
        "detect": [{"batch": 0, "models": [], "face_model": "f",
                    "frames": [{"key": keys[1], "scores": {"aigen.ai": 0.7}},
                               {"key": keys[4], "scores": {"aigen.ai": 0.2}}]}],
    })
    # THEN each key names one frame by its position; a tie goes to the earlier frame
    assert request.signal_frames() == {"aigen.ai": 1, "nsfw": 2}
