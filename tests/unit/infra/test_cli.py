from pathlib import Path

import pytest

from infra import build
from infra.cli import main


@pytest.mark.parametrize("scale", ["0", "-5", "fast"])
def test_a_time_scale_that_is_not_a_positive_number_is_refused(scale: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["local", "--time-scale", scale])
    assert exit_.value.code == 2
    assert "--time-scale" in capsys.readouterr().err


def test_compile_check_passes_on_the_committed_scenarios(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compile", "--check"]) == 0


def test_validate_lists_the_valid_scenarios(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate"]) == 0
    assert "welcome" in capsys.readouterr().out


def test_graph_prints_mermaid_and_writes_the_svg(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "welcome.svg"
    assert main(["graph", "welcome", "--svg", str(target)]) == 0
    assert capsys.readouterr().out.startswith("flowchart TD\n")
    assert target.read_text().startswith("<svg")


def test_graph_of_an_unknown_scenario_names_the_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", "nope"]) == 2
    known = sorted(path.stem for path in build.scenario_files())
    assert f"known: {', '.join(known)}\n" in capsys.readouterr().err
    assert "welcome" in known


def test_local_with_a_crm_url_but_no_signing_secret_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PARCOURS_CRM_SECRET", raising=False)
    assert main(["local", "--crm-url", "http://127.0.0.1:9/crm"]) == 2
    assert "a CRM URL needs PARCOURS_CRM_SECRET" in capsys.readouterr().err


def test_the_crm_url_may_come_from_the_environment_too(monkeypatch: pytest.MonkeyPatch) -> None:
    from infra.local import LocalRuntime, LocalRuntimeError

    with pytest.raises(LocalRuntimeError, match="PARCOURS_CRM_SECRET"):
        LocalRuntime(environ={"PARCOURS_CRM_URL": "http://127.0.0.1:9/crm"})
    runtime = LocalRuntime(environ={"PARCOURS_CRM_SECRET": "s"}, crm_url="http://127.0.0.1:9/crm")
    assert runtime.environ["PARCOURS_CRM_URL"] == "http://127.0.0.1:9/crm"


@pytest.mark.parametrize(("start", "words"), [("saturday", "ISO date and time"), ("2026-11-28T21:30", "UTC offset")])
def test_a_start_that_is_not_an_instant_is_refused(start: str, words: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["local", "--start", start])
    assert exit_.value.code == 2
    assert words in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["codes", "load", "welcome-10"], "error: `parcours codes load POOL FILE`: which file?"),
        (
            ["codes", "status", "Welcome 10"],
            "error: pool 'Welcome 10': lower-case letters, digits and dashes, at most 40",
        ),
        (["codes", "load", "welcome-10", "/nonexistent/codes.csv"], "error: cannot read /nonexistent/codes.csv: "),
    ],
)
def test_codes_refuses_a_missing_file_or_a_bad_pool_name_before_reaching_aws(
    args: list[str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 2
    assert capsys.readouterr().err.startswith(error)
