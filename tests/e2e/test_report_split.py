"""An A/B test end to end against `parcours local`: customers who order with a discount code enter
promotion-thanks, whose thank-you's subject is a `split`; each gets the variant of their stable bucket. The people
of variant b click, those of variant a do not: the signed report route shows both variants' counts, and declares b
the winner only once the difference is significant."""

from __future__ import annotations

import uuid
from datetime import UTC
from typing import Any

from infra.localprocess import RunningLocal
from infra.webhook_client import post_shopify, signed
from tests.conftest import SHOPIFY_SECRET
from tests.e2e.test_lists import discounted_order
from tests.e2e.test_shopify_webhook import customer, unique_email

VARIANTS = {"e1-thanks": "a", "e1-thanks-circle": "b"}


def subject_test(local: RunningLocal, first: str, last: str) -> dict[str, Any]:
    answer = signed("GET", f"{local.api_url}/v1/reports/scenarios?from={first}&to={last}&scenario=promotion-thanks")
    assert answer.status == 200, answer.body
    [scenario] = answer.body["scenarios"]
    [split] = scenario["splits"]
    return dict(split)


def counts(split: dict[str, Any]) -> dict[str, tuple[int, int]]:
    return {variant["name"]: (variant["sent"], variant["clicked"]) for variant in split["variants"]}


def test_a_split_shows_each_variants_counts_and_names_a_winner_only_when_significant(local: RunningLocal) -> None:
    day = local.now().astimezone(UTC).date().isoformat()
    before = counts(subject_test(local, day, day))

    # Given customers ordering with a discount code, until each variant has four of them (each customer's variant
    # is their bucket's: a hash of who they are, 50 / 50)
    got: dict[str, list[str]] = {"a": [], "b": []}
    for _ in range(40):  # four of each in 40 is all but certain (a miss: 2^-30)
        if min(len(people) for people in got.values()) >= 4:
            break
        email = unique_email("ab")
        post_shopify(local.api_url, "customers/create", customer(email), SHOPIFY_SECRET, uuid.uuid4().hex)
        post_shopify(local.api_url, "orders/create", discounted_order(email), SHOPIFY_SECRET, uuid.uuid4().hex)
        local.advance(seconds=0)
        [thanks] = [m for m in local.outbox(to=email) if m["scenario"] == "promotion-thanks"]
        got[VARIANTS[thanks["step"]]].append(email)
    b = got["b"]
    assert min(len(got["a"]), len(b)) >= 4

    # When one person of variant b clicks its email
    for email in b[:1]:
        status, _ = local.ses_event(to=email, step="e1-thanks-circle", type="click", link="https://boutique.example/")
        assert status == 202
    local.advance(seconds=0)

    # Then the report shows both variants' sends and clicks, and no winner yet: one click is chance whatever the
    # sizes here (Fisher's p is at least 4 / 40)
    last = local.now().astimezone(UTC).date().isoformat()
    split = subject_test(local, day, last)
    after = counts(split)
    sent = {name: after[name][0] - before[name][0] for name in ("a", "b")}
    clicked = {name: after[name][1] - before[name][1] for name in ("a", "b")}
    assert (sent, clicked) == ({"a": len(got["a"]), "b": len(b)}, {"a": 0, "b": 1})
    assert [v["percent"] for v in split["variants"]] == [50, 50]
    if before == {"a": (0, 0), "b": (0, 0)}:  # alone on this day: the verdict is on these figures only
        assert (split["winner"], split["significant"]) == (None, False)
        assert split["verdict"].startswith("no significant difference yet on click rate")
        assert split["test"] == "Fisher's exact test"  # cells of fewer than 5 expected

    # When every other person of variant b clicks too
    for email in b[1:]:
        local.ses_event(to=email, step="e1-thanks-circle", type="click", link="https://boutique.example/")
    local.advance(seconds=0)

    # Then b is declared the winner: 4 of 4 (or more) against 0 of 4 (or more) is significant (Fisher, p ≤ 0.03)
    split = subject_test(local, day, local.now().astimezone(UTC).date().isoformat())
    assert counts(split)["b"][1] - before["b"][1] == len(b)
    assert (split["winner"], split["significant"]) == ("b", True)
    assert split["verdict"].startswith("b wins on click rate")
