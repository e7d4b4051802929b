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
    assert set(table) == set(build.compile_all().scenarios)
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
