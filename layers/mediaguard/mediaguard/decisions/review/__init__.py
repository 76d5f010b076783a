"""Human review: a prioritised queue with a fast lane and an SLA, reviewer decisions with
reason codes, and appeals decided by a different reviewer.

How the automated path hands over: the Express pipeline never waits for a person. Its
enforce stage records the automated action and calls ``ReviewQueue.enqueue`` (one
conditional write), and the execution ends. A reviewer's decision later calls
``enforcement.apply`` directly (the "queue + resume call" model): no task token, no
Standard workflow parked for hours per image.

Priority. ``priority = risk x (1 + log10(1 + reach))`` with reach (the uploader's
audience, e.g. followers, supplied by the platform at upload) clipped to 10^9, so
priority is in [0, 10]. The log keeps reach from swamping risk: an item seen by a
million people weighs 7x one seen by nobody, not a million times. Unknown reach counts
as 0, so an item is never ranked below its bare risk.

Lanes. ``fast`` when risk >= ``fast_lane_risk`` (0.9 by default: the upper half of the
policy's 0.85-0.95 review band), else ``normal``; each lane has its own SLA (1 h / 24 h
by default). A task past its deadline is moved to the ``escalated`` lane by the SLA
function, which only senior reviewers work; a reviewer can also escalate by hand.

Claims. A reviewer claims a task before deciding it; a claim is a lease (15 min by
default). Claim and decide are conditional writes in the store, so two reviewers can
never both hold a task or both decide it.

Appeals. The uploader (the JWT subject the upload was granted to) may appeal a
restrictive action once, with a short statement. A senior reviewer who neither made the
decision nor uploaded the item upholds or overturns it; an overturn restores the item
through ``enforcement.restore`` and withdraws the strike a reviewer's removal put on the
uploader's history (``mediaguard.decisions.history``).

Every state change of consequence is appended to the item's audit chain (``media_id``):
``review_enqueued``, ``review_escalated``, ``review_decided``, ``media_opened`` (who was
handed a link to the sanitized copy, still blurred), ``media_revealed`` (who un-blurred it:
reviewers of NCII must be accountable for each look; each reveal is also counted in the
reviewer's ``exposure:<sub>:<day>`` chain),
``appeal_opened`` (the statement's hash, never its text) and ``appeal_decided``.

The package, one thing per module: ``models`` (tasks, decisions, the item view),
``appeals`` (what an appeal is), ``reasons`` (reason codes and the actions each
justifies), ``roles`` (the caller and what their role allows), ``settings``, ``queue``
(priority, lanes, keys and the pipeline's ``TaskQueue``), ``ports`` (the stores the
service writes through), ``uploader`` (who uploaded an item, from its grant) and
``service`` (``ReviewService``, which ``mediaguard.api.review`` puts on HTTP).
"""
