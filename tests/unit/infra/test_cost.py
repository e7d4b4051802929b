"""`parcours cost`: what each shipped scenario costs in AWS and a shop's month, from the compiled ASL, the measured
figures and the prices file; a prices or measured file given instead is checked before anything is priced."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from infra import build, cli
from infra.cost import estimate


def run(capsys: pytest.CaptureFixture[str], *arguments: str) -> tuple[int, str, str]:
    code = cli.main(["cost", *arguments])
    out, err = capsys.readouterr()
    return code, out, err


def rows(out: str) -> dict[str, list[str]]:
    """The first table's rows by scenario."""
    table = out.split("\n\n")[1]
    cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in table.splitlines()[2:]]
    return {row[0]: row[1:] for row in cells}


def test_every_shipped_scenario_is_priced_and_the_welcome_series_stays_within_one_and_a_half_times_ses(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys)
    assert code == 0
    table = rows(out)
    assert set(table) == {*build.compile_all().scenarios, "black-friday (campaign)"}
    assert table["welcome"][1:3] == ["7", "4"]  # transitions, emails
    per_message = float(table["welcome"][-1].lstrip("$"))
    assert per_message <= 0.15 / 1000  # SES alone is $0.10 per 1,000
    assert re.search(r"\| total \| \$\d+\.\d\d", out)


def test_the_month_follows_the_shop_described(capsys: pytest.CaptureFixture[str]) -> None:
    def total(out: str) -> float:
        return float(re.search(r"\| total \| \$([\d,]+\.\d\d)", out).group(1).replace(",", ""))  # type: ignore[union-attr]

    small = total(run(capsys, "--orders", "100", "--events", "5000")[1])
    large = total(run(capsys, "--orders", "10000", "--events", "500000")[1])
    assert large > 5 * small


def test_a_campaign_costs_about_what_its_emails_cost_and_the_month_counts_the_shops_campaigns(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given the shipped Black Friday campaign, when its cost is printed
    code, out, _ = run(capsys)
    assert code == 0
    row = rows(out)["black-friday (campaign)"]
    # Then a person costs one email and no state transition, and the rest of AWS adds little to SES's $0.10 per 1,000
    assert row[:4] == ["1", "0", "1", "$0.000"]
    assert row[6] == "$0.100"
    assert 0.10 / 1000 < float(row[-1].lstrip("$")) <= 0.11 / 1000

    # And the month has the shop's campaigns, each to everyone with consent
    def month(*arguments: str) -> tuple[str, float]:
        out = run(capsys, *arguments)[1]
        entries = re.search(r"\| campaigns \((\d+) a month\) \| ([\d,]+) \|", out)
        ses = re.search(r"\| SES \| \$([\d,]+\.\d\d) \|", out)
        assert entries is not None
        assert ses is not None
        return entries.group(2), float(ses.group(1).replace(",", ""))

    shop = ("--contacts", "20000", "--consent", "0.25")
    none, weekly = month("--campaigns", "0", *shop), month("--campaigns", "8", *shop)
    assert none[0] == "0"
    assert weekly[0] == "40,000"  # 8 x 20,000 x 25 %
    assert weekly[1] - none[1] == pytest.approx(4.00, abs=0.01)  # 40,000 emails at $0.10 per 1,000


def test_an_sms_campaign_is_priced_at_the_countrys_sms_price_or_said_unpriced(tmp_path: Path) -> None:
    (tmp_path / "flash.yaml").write_text(
        "id: flash\nsms: promotions/black-friday\ntopic: promotions\naudience: {list: newsletter}\n"
    )
    prices = json.loads(estimate.PRICES.read_text())
    measured = json.loads(estimate.MEASURED.read_text())
    [unknown] = estimate.campaign_lines(prices, measured, tmp_path)
    assert (unknown.name, unknown.path.sent("sms"), unknown.unpriced) == ("flash (campaign)", 1, ["SNS SMS"])
    assert unknown.by_service["SES"] == 0.0  # and no SES notification to handle
    prices["sns_sms"]["FR"] = 0.07
    [priced] = estimate.campaign_lines(prices, measured, tmp_path)
    assert priced.by_service["SNS SMS"] == 0.07
    assert priced.per_entry - 0.07 == pytest.approx(unknown.per_entry)


def test_a_campaign_file_that_cannot_be_read_is_refused_with_its_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "broken.yaml").write_text(
        "id: broken\nemail: promotions/black-friday\ntopic: promotions\naudience: [newsletter]\n"
    )
    monkeypatch.setattr(build, "CAMPAIGNS", tmp_path)
    code, out, err = run(capsys)
    assert (code, out) == (2, "")
    assert err.startswith("parcours cost: ")
    assert "broken.yaml:4" in err
    assert "audience" in err


def test_a_measured_file_without_the_campaigns_figures_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    measured = json.loads(estimate.MEASURED.read_text())
    del measured["campaign"]["writes"]
    mine = tmp_path / "measured.json"
    mine.write_text(json.dumps(measured))
    code, out, err = run(capsys, "--measured", str(mine))
    assert (code, out) == (2, "")
    assert err == f"parcours cost: {mine}: campaign.writes is missing\n"


def test_a_prices_file_of_ones_own_changes_the_figures(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    prices = json.loads(estimate.PRICES.read_text())
    prices["ses_email"]["usd"] = 0.001  # ten times SES's price
    prices["sns_sms"]["FR"] = 0.07
    mine = tmp_path / "prices.json"
    mine.write_text(json.dumps(prices))
    default, priced = rows(run(capsys)[1]), rows(run(capsys, "--prices", str(mine))[1])
    assert default["welcome"][6] == "$0.400"  # SES per 1,000 entries: 4 emails
    assert priced["welcome"][6] == "$4.000"
    assert (default["abandoned-cart"][7], priced["abandoned-cart"][7][:1]) == ("unpriced", "$")  # its SMS


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda p: p.pop("ses_email"), "ses_email is missing"),
        (lambda p: p["ses_email"].update(usd="0.10"), 'ses_email.usd must be a number, 0 or more, not "0.10"'),
        (lambda p: p["lambda_request"].update(usd=-1), "lambda_request.usd must be a number, 0 or more, not -1"),
        (lambda p: p.update(sns_sms=0.07), "sns_sms must be an object"),
        (lambda p: p["sns_sms"].update(FR="cheap"), 'sns_sms.FR must be a number, 0 or more, or null, not "cheap"'),
    ],
)
def test_a_bad_prices_file_is_refused_naming_the_entry(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, change: object, words: str
) -> None:
    prices = json.loads(estimate.PRICES.read_text())
    change(prices)  # type: ignore[operator]
    mine = tmp_path / "prices.json"
    mine.write_text(json.dumps(prices))
    code, out, err = run(capsys, "--prices", str(mine))
    assert (code, out) == (2, "")
    assert err == f"parcours cost: {mine}: {words}\n"


def test_an_unreadable_or_broken_file_is_refused_naming_it(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "--measured", str(tmp_path / "nowhere.json"))
    assert code == 2
    assert "nowhere.json: cannot be read" in err
    broken = tmp_path / "measured.json"
    broken.write_text('{\n  "process": {\n')
    code, _, err = run(capsys, "--measured", str(broken))
    assert code == 2
    assert f"{broken}:3: not JSON" in err


@pytest.mark.parametrize(
    ("arguments", "words"),
    [(["--consent", "50"], "from 0 to 1"), (["--orders", "-3"], "0 or more"), (["--contacts", "ten"], "whole number")],
)
def test_a_shop_described_wrongly_is_refused(
    capsys: pytest.CaptureFixture[str], arguments: list[str], words: str
) -> None:
    with pytest.raises(SystemExit) as refused:
        run(capsys, *arguments)
    assert refused.value.code == 2
    assert words in capsys.readouterr().err
