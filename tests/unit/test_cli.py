from pathlib import Path

import pytest

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
    assert "known: abandoned-cart, loyalty, onboarding, post-purchase, welcome" in capsys.readouterr().err
