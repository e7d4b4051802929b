"""A campaign's A/B test over the local runtime, on skipped time: the two subjects go to the sample (each person the
variant of their hash), the rest waits; the people of variant b click; after the wait the winner goes to the rest,
each person once, and the status (the route and `parcours campaigns status`) shows each variant's sends and clicks,
the winner and that it was not significant on so few people."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from infra import cli
from infra.localprocess import RunningLocal
from infra.webhook_client import signed
from shared.campaigns import ab, document
from tests.e2e.test_campaigns import campaign, campaign_mail, subscriber

SUBJECTS = {"a": "Black Friday: -30 % on everything", "b": "Your Black Friday offer is inside"}


def ab_document(campaign_id: str, members: str) -> dict[str, Any]:
    return {
        "id": campaign_id,
        "email": "promotions/black-friday",
        "topic": "promotions",
        "audience": {"list": members},
        "ab": {
            "variants": [{"subject": SUBJECTS["a"]}, {"name": "b", "subject": SUBJECTS["b"]}],
            "sample": "50%",
            "wait": "4h",
            "metric": "clicks",
        },
    }


def members_of(local: RunningLocal, name: str) -> dict[str, str]:
    answer = signed("GET", f"{local.api_url}/v1/lists/{name}/members")
    assert answer.status == 200, answer.body
    return {m["contact_id"]: m["email"] for m in answer.body["members"]}


def balanced_id(members: str, people: dict[str, str]) -> str:
    """A campaign id whose hash gives each variant two or three people and keeps two or more for the rest (the draw is
    the product's own: shared.campaigns.ab.assign, a hash of campaign and person). Three at most: b's clicks against
    a's none are then never significant (Fisher's p >= 0.1; 3 of 3 against 0 of 4 would be, p = 0.029)."""
    for _ in range(500):
        campaign_id = f"ab-{uuid.uuid4().hex[:8]}"
        test = document.read(document.from_json(ab_document(campaign_id, members)), document.Known()).ab
        assert test is not None
        drawn = Counter(ab.assign(campaign_id, test, person) for person in people)
        if 2 <= drawn["a"] <= 3 and 2 <= drawn["b"] <= 3 and drawn[None] >= 2:
            return campaign_id
    raise AssertionError("no balanced draw in 500 ids")


def status_of(local: RunningLocal, campaign_id: str) -> dict[str, Any]:
    answer = signed("GET", f"{local.api_url}/v1/campaigns/{campaign_id}")
    assert answer.status == 200, answer.body
    return dict(answer.body)


def test_an_ab_campaign_sends_the_variants_to_the_sample_then_the_winner_to_the_rest(
    local: RunningLocal, local_credentials: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given ten subscribers on a list, and an A/B test of two subjects on half of them, decided on clicks after 4h
    members = f"ab-{uuid.uuid4().hex[:8]}"
    for _ in range(10):
        subscriber(local, "ab", members)
    people = members_of(local, members)
    campaign_id = balanced_id(members, people)
    created = campaign(local, ab_document(campaign_id, members))
    assert created.status == 201, created.body

    # When it is sent
    assert signed("POST", f"{local.api_url}/v1/campaigns/{campaign_id}/send", b"").status == 202
    local.advance(seconds=120)

    # Then the sample gets its variants' subjects, the others nothing yet
    sample = {m["to"]: m for m in campaign_mail(local, campaign_id)}
    by_subject = {name: sorted(to for to, m in sample.items() if m["subject"] == s) for name, s in SUBJECTS.items()}
    assert min(len(by_subject["a"]), len(by_subject["b"])) >= 2
    assert len(sample) == len(by_subject["a"]) + len(by_subject["b"])
    rest = sorted(set(people.values()) - set(sample))
    assert len(rest) >= 2
    status = status_of(local, campaign_id)
    assert status["sent"] == len(sample)
    assert status["status"] == "sending"
    assert (status["ab"]["phase"], status["ab"]["held"], status["ab"]["winner"]) == ("waiting", len(rest), None)

    # When the people of variant b click
    for email in by_subject["b"]:
        answer = local.ses_event(to=email, step="email", type="click", link="https://boutique.example/black-friday")
        assert answer[0] == 202, answer
    local.advance(seconds=60)

    # Then the status counts each variant's sends and clicks so far, before the decision
    status = status_of(local, campaign_id)
    counted = {v["name"]: (v["sent"], v["clicked"]) for v in status["ab"]["variants"]}
    assert counted == {"a": (len(by_subject["a"]), 0), "b": (len(by_subject["b"]), len(by_subject["b"]))}
    assert campaign_mail(local, campaign_id) == list(sample.values())  # still nothing for the rest

    # When the wait is over
    local.advance(to=datetime.fromisoformat(status["ab"]["decide_at"]) + timedelta(minutes=5))

    # Then the rest gets b's subject, and nobody got the campaign twice
    mail = campaign_mail(local, campaign_id)
    assert sorted(m["to"] for m in mail) == sorted(people.values())  # each person once
    assert sorted(m["to"] for m in mail if m["to"] in rest and m["subject"] == SUBJECTS["b"]) == rest

    # And the status names b the winner, not significant on so few (Fisher's test), and the campaign done
    status = status_of(local, campaign_id)
    test = status["ab"]
    assert (test["phase"], test["winner"], test["significant"]) == ("decided", "b", False)
    assert "not significantly" in test["decision"]["verdict"]
    assert test["decision"]["test"] == "Fisher's exact test"
    assert (status["sent"], status["audience"], status["status"], status["progress"]) == (10, 10, "sent", 1.0)
    sent = {v["name"]: v["sent"] for v in test["variants"]}
    assert sent == {"a": len(by_subject["a"]), "b": len(by_subject["b"])}  # the rest is not in the test's figures

    # And the report shows the campaign's A/B test as its split: the sample's variants, b clicked, no winner declared
    day = status["started_at"][:10]
    last = local.now().astimezone(UTC).date().isoformat()
    reported = signed("GET", f"{local.api_url}/v1/reports/scenarios?from={day}&to={last}&campaign={campaign_id}")
    assert reported.status == 200, reported.body
    [row] = reported.body["scenarios"]
    [split] = row["splits"]
    assert [(v["name"], v["percent"], v["sent"], v["clicked"]) for v in split["variants"]] == [
        ("a", 25, len(by_subject["a"]), 0),
        ("b", 25, len(by_subject["b"]), len(by_subject["b"])),
    ]
    assert (split["metric"], split["winner"], split["significant"]) == ("click", None, False)
    assert row["sent"] == 10  # the rest too, in the campaign's figures

    # And `parcours campaigns status` says the same in a few lines
    assert cli.main(["campaigns", "status", campaign_id, "--api", local.api_url, "--region", "eu-west-3"]) == 0
    shown = capsys.readouterr().out
    assert "A/B test   50% sample, on clicks after 4h: decided" in shown
    assert f"sent {len(by_subject['b'])}  opens 0  clicks {len(by_subject['b'])}" in shown
    assert "winner     b (not significant)" in shown


def test_an_ab_campaign_document_is_refused_naming_the_field(local: RunningLocal) -> None:
    base = ab_document("ab-bad", "newsletter")
    cases = [
        ({**base, "ab": {**base["ab"], "sample": "100%"}}, "ab.sample"),
        ({**base, "ab": {**base["ab"], "wait": "5m"}}, "ab.wait"),
        ({**base, "ab": {**base["ab"], "metric": "orders"}}, "ab.metric"),
        ({**base, "ab": {**base["ab"], "variants": [{"subject": "Only one"}]}}, "ab.variants"),
        (
            {**base, "ab": {**base["ab"], "variants": [{"subject": "x"}, {"email": "promotions/none"}]}},
            "ab.variants[1].email",
        ),
        ({**base, "when": {"local_time": "10:00"}}, "ab"),
    ]
    for body, field in cases:
        answer = signed("POST", f"{local.api_url}/v1/campaigns", json.dumps(body).encode())
        assert answer.status == 400, (body, answer.body)
        assert answer.body["field"] == field, answer.body
