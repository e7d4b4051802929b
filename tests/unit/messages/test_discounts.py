"""Discount codes: pools loaded from a shop's export, one code per contact claimed atomically, fixed codes, and
what a send records (shared/messages/discounts.py, shared/messages/sending.py)."""

import email
import email.policy
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto.ses.models import ses_backends

from shared import outbox, storage
from shared.clock import Clock
from shared.messages import discounts, sending
from shared.people import suppression
from shared.settings import Settings
from shared.storage import Consent, DiscountCodeModel, tables
from tests.conftest import SUPPRESSION_KEY, handler_of

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
KEY = suppression.HashKey(SUPPRESSION_KEY.encode())
EXECUTION = "arn:aws:states:eu-west-3:123456789012:execution:parcours-abandoned-cart:x"


@pytest.fixture
def settings(aws: dict[str, str]) -> Settings:
    settings = Settings.from_environ(aws)
    boto3.client("ses", region_name="eu-west-3").verify_domain_identity(Domain="boutique.example")
    return settings


@pytest.fixture
def pool(settings: Settings) -> type[DiscountCodeModel]:
    return tables(settings).discount_codes


def claim(model: type[DiscountCodeModel], contact: str, pool: str = "welcome-10") -> discounts.Discount:
    return discounts.claim(model, pool, contact, "abandoned-cart", EXECUTION, NOW)


# ---- loading -------------------------------------------------------------------------------------------------


def test_a_file_loads_once_loading_it_again_adds_nothing_and_a_longer_file_adds_only_the_new_codes(
    pool: type[DiscountCodeModel],
) -> None:
    first = discounts.load(pool, "welcome-10", ["A1", "A2", "A3"], NOW)
    again = discounts.load(pool, "welcome-10", ["A1", "A2", "A3"], NOW)
    longer = discounts.load(pool, "welcome-10", ["A1", "A2", "A3", "A4"], NOW)
    assert (first.added, first.already, first.total) == (3, 0, 3)
    assert (again.added, again.already, again.total) == (0, 3, 3)
    assert (longer.added, longer.already, longer.total) == (1, 3, 4)
    assert discounts.status(pool, "welcome-10") == discounts.Status(total=4, claimed=0)


def test_a_large_file_loads_in_several_transactions(pool: type[DiscountCodeModel]) -> None:
    codes = [f"CODE-{n:04d}" for n in range(discounts.CHUNK * 2 + 7)]
    assert discounts.load(pool, "big", codes[:10], NOW).added == 10
    assert discounts.load(pool, "big", codes, NOW).added == len(codes) - 10
    numbered = [item.code for item in pool.query("big", pool.key.startswith("seq#"))]
    assert numbered == codes  # each code numbered once, in the file's order: the claims hand them out in turn
    assert discounts.status(pool, "big").total == len(codes)


def test_a_shop_csv_export_with_a_header_and_a_blank_line_gives_its_first_column() -> None:
    text = '\ufeffCode,Usage count\nWELCOME-AB12,0\n\n"WELCOME-CD34",0\n'
    assert discounts.parse_codes(text, "codes.csv") == ["WELCOME-AB12", "WELCOME-CD34"]


@pytest.mark.parametrize(
    ("text", "problems"),
    [
        ("", ["codes.txt: no discount code in the file (one code per line)"]),
        ("\n  \n", ["codes.txt: no discount code in the file (one code per line)"]),
        (
            "GOOD1\nBAD CODE\nGOOD2\nbad!\n",
            [
                "codes.txt:2: 'BAD CODE' is not a discount code: letters, digits, _ and -, at most 64",
                "codes.txt:4: 'bad!' is not a discount code: letters, digits, _ and -, at most 64",
            ],
        ),
        ("A" * 65 + "\n", [f"codes.txt:1: {'A' * 65!r} is not a discount code: letters, digits, _ and -, at most 64"]),
        ("X1\nX2\n\nX1\n", ["codes.txt:4: X1 is repeated (first on line 1)"]),
    ],
    ids=["empty", "blank", "malformed", "too-long", "duplicate"],
)
def test_a_bad_codes_file_is_refused_naming_each_bad_line(text: str, problems: list[str]) -> None:
    with pytest.raises(discounts.CodesFileError) as refused:
        discounts.parse_codes(text, "codes.txt")
    assert refused.value.problems == problems


def test_a_pool_name_is_a_slug(pool: type[DiscountCodeModel]) -> None:
    with pytest.raises(discounts.CodesFileError, match="pool 'Welcome 10'"):
        discounts.load(pool, "Welcome 10", ["A1"], NOW)


# ---- claiming ------------------------------------------------------------------------------------------------


def test_two_contacts_get_two_codes_and_a_contact_asking_again_gets_its_own_again(
    pool: type[DiscountCodeModel],
) -> None:
    discounts.load(pool, "welcome-10", ["A1", "A2", "A3"], NOW)
    lou, sam = claim(pool, "lou"), claim(pool, "sam")
    assert lou.code != sam.code
    assert claim(pool, "lou").code == lou.code  # a retried Task, or the series' reminder
    assert discounts.status(pool, "welcome-10") == discounts.Status(total=3, claimed=2)


def test_the_claim_records_who_got_the_code_when_and_from_which_execution(pool: type[DiscountCodeModel]) -> None:
    discounts.load(pool, "welcome-10", ["A1"], NOW)
    code = claim(pool, "lou").code
    by_contact = pool.get("welcome-10", "contact#lou")
    by_code = pool.get("welcome-10", f"code#{code}")
    for record in (by_contact, by_code):
        assert (record.code, record.contact_id, record.claimed_at) == (code, "lou", NOW)
        assert (record.scenario, record.execution) == ("abandoned-cart", EXECUTION)


def interleaved(monkeypatch: pytest.MonkeyPatch, other: Any) -> None:
    """Runs `other` (a whole claim) in the middle of the next claim, after its counter increment: the race two
    concurrent Tasks would run (moto's in-process DynamoDB is not thread-safe, so the race is played in order)."""
    real = storage.get_or_none
    pending = [other]

    def get_or_none(model: Any, key: str, **kwargs: Any) -> Any:
        if str(kwargs.get("range_key", "")).startswith("seq#") and pending:
            pending.pop()()
        return real(model, key, **kwargs)

    monkeypatch.setattr(discounts, "get_or_none", get_or_none)


def test_two_contacts_claiming_at_the_same_time_get_two_codes(
    pool: type[DiscountCodeModel], monkeypatch: pytest.MonkeyPatch
) -> None:
    discounts.load(pool, "welcome-10", ["A1", "A2", "A3"], NOW)
    got: list[str] = []
    interleaved(monkeypatch, lambda: got.append(claim(pool, "sam").code))
    lou = claim(pool, "lou").code
    assert sorted([lou, *got]) == ["A1", "A2"]


def test_the_same_contact_claiming_twice_at_the_same_time_gets_one_code(
    pool: type[DiscountCodeModel], monkeypatch: pytest.MonkeyPatch
) -> None:
    discounts.load(pool, "welcome-10", ["A1", "A2", "A3"], NOW)
    got: list[str] = []
    interleaved(monkeypatch, lambda: got.append(claim(pool, "lou").code))
    assert claim(pool, "lou").code == got[0]
    assert claim(pool, "lou").code == got[0]
    # The loser's number is burnt: never handed out, never handed out twice.
    assert discounts.status(pool, "welcome-10") == discounts.Status(total=3, claimed=2)
    assert claim(pool, "sam").code not in got


def test_an_exhausted_pool_refuses_naming_the_pool_and_keeps_what_was_given(pool: type[DiscountCodeModel]) -> None:
    discounts.load(pool, "welcome-10", ["A1"], NOW)
    lou = claim(pool, "lou")
    with pytest.raises(discounts.DiscountPoolEmpty, match="discount pool 'welcome-10' is empty: its 1 codes"):
        claim(pool, "sam")
    assert claim(pool, "lou").code == lou.code
    assert discounts.status(pool, "welcome-10") == discounts.Status(total=1, claimed=1)
    discounts.load(pool, "welcome-10", ["A2"], NOW)  # more codes: the next claim succeeds
    assert claim(pool, "sam").code == "A2"


def test_a_pool_never_loaded_says_how_to_load_it(pool: type[DiscountCodeModel]) -> None:
    with pytest.raises(discounts.DiscountPoolEmpty, match="'nope' has no codes: load them with `parcours codes"):
        claim(pool, "lou", "nope")


def test_a_pool_running_low_says_so(pool: type[DiscountCodeModel]) -> None:
    discounts.load(pool, "welcome-10", [f"C{n}" for n in range(discounts.LOW + 1)], NOW)
    first, second = claim(pool, "a"), claim(pool, "b")
    assert (first.left, first.low) == (discounts.LOW, False)
    assert (second.left, second.low) == (discounts.LOW - 1, True)
    assert discounts.answer(second) == {"discount_code": second.code, "discount_low": True}


# ---- in a send -----------------------------------------------------------------------------------------------


def add_contact(settings: Settings, contact_id: str, address: str) -> None:
    contact = tables(settings).contacts(
        contact_id=contact_id, email=address, first_name="Camille", locale="fr", created_at=NOW, updated_at=NOW
    )
    contact.email_consent = Consent(state="granted", level="single_opt_in", source="test", at=NOW)
    contact.save()


def send(contact_id: str, step: str, discount: dict[str, str] | None, settings: Settings) -> dict[str, Any]:
    payload = {
        "scenario": "abandoned-cart",
        "step": step,
        "template": "abandoned-cart/3-offer",
        "execution": EXECUTION + contact_id,
        "contact_id": contact_id,
        "trigger": {"properties": {"lines": [], "currency": "EUR", "recovery_url": "https://boutique.example/r"}},
        **({"discount": discount} if discount else {}),
    }
    return sending.send_email(sending.SendRequest.from_payload(payload), settings, Clock(), "secret", KEY)


def bodies() -> list[str]:
    messages = ses_backends["123456789012"]["eu-west-3"].sent_messages
    parsed = [email.message_from_string(m.raw_data, policy=email.policy.default) for m in messages]
    return [str(m.get_body(("plain",)).get_content()) for m in parsed]  # type: ignore[union-attr]


def test_a_fixed_code_is_in_the_email_and_in_the_send_record(settings: Settings) -> None:
    add_contact(settings, "c1", "camille@example.com")
    answer = send("c1", "e3-offer", {"code": "PANIER10"}, settings)
    assert (answer["status"], answer["discount_code"]) == ("sent", "PANIER10")
    assert "PANIER10" in bodies()[0]
    record = tables(settings).sends.get(outbox.send_id(EXECUTION + "c1", "e3-offer"))
    assert record.discount_code == "PANIER10"


def test_a_pool_code_is_the_contacts_own_in_every_email_and_recorded_with_each_send(settings: Settings) -> None:
    discounts.load(tables(settings).discount_codes, "cart-10", ["CART-AAA", "CART-BBB"], NOW)
    add_contact(settings, "c1", "camille@example.com")
    add_contact(settings, "c2", "sam@example.com")
    first = send("c1", "e3-offer", {"pool": "cart-10"}, settings)
    other = send("c2", "e3-offer", {"pool": "cart-10"}, settings)
    reminder = send("c1", "e4-reminder", {"pool": "cart-10"}, settings)
    assert first["discount_code"] == reminder["discount_code"] != other["discount_code"]
    texts = bodies()
    assert first["discount_code"] in texts[0]
    assert first["discount_code"] in texts[2]
    assert other["discount_code"] in texts[1]
    sends = tables(settings).sends
    assert sends.get(outbox.send_id(EXECUTION + "c1", "e4-reminder")).discount_code == first["discount_code"]


def test_an_empty_pool_stops_the_send_and_a_skipped_send_claims_nothing(settings: Settings) -> None:
    add_contact(settings, "c1", "camille@example.com")
    with pytest.raises(discounts.DiscountPoolEmpty, match="'cart-10'"):
        send("c1", "e3-offer", {"pool": "cart-10"}, settings)
    assert bodies() == []
    discounts.load(tables(settings).discount_codes, "cart-10", ["CART-AAA"], NOW)
    skipped = send("nobody", "e3-offer", {"pool": "cart-10"}, settings)  # no such contact: skipped
    assert skipped["status"] == "skipped"
    assert discounts.status(tables(settings).discount_codes, "cart-10").claimed == 0


def test_a_template_showing_a_discount_in_a_step_without_one_fails_to_render(settings: Settings) -> None:
    from shared.messages.templates import TemplateProblem

    add_contact(settings, "c1", "camille@example.com")
    with pytest.raises(TemplateProblem, match=r"3-offer\.fr\.html:7"):
        send("c1", "e3-offer", None, settings)


# ---- the act function's metrics ------------------------------------------------------------------------------


@pytest.fixture
def act(settings: Settings, aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    yield from handler_of("functions.act.app", {**aws, "PARCOURS_LINK_SECRET": "secret"}, monkeypatch)


def metrics_of(output: str) -> list[str]:
    names = []
    for line in output.splitlines():
        if line.startswith("{") and "_aws" in line:
            document = json.loads(line)
            names += [metric["Name"] for metric in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
    return names


def test_the_act_function_counts_an_empty_pool_and_a_pool_running_low(
    act: Any, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    from infra.local import InvocationContext

    add_contact(settings, "c1", "camille@example.com")
    add_contact(settings, "c2", "sam@example.com")
    task = {
        "action": "send_email",
        "scenario": "abandoned-cart",
        "step": "e3-offer",
        "template": "abandoned-cart/3-offer",
        "execution": EXECUTION,
        "trigger": {"properties": {"lines": [], "currency": "EUR", "recovery_url": "https://boutique.example/r"}},
        "discount": {"pool": "cart-10"},
    }
    with pytest.raises(discounts.DiscountPoolEmpty):
        act({**task, "contact_id": "c1"}, InvocationContext.of("act"))
    assert "DiscountPoolEmpty" in metrics_of(capsys.readouterr().out)
    discounts.load(tables(settings).discount_codes, "cart-10", ["CART-AAA", "CART-BBB"], NOW)
    answer = act({**task, "contact_id": "c2"}, InvocationContext.of("act"))
    assert (answer["status"], answer["discount_code"], answer["discount_low"]) == ("sent", "CART-AAA", True)
    assert metrics_of(capsys.readouterr().out) == ["EmailSent", "DiscountPoolLow"]
