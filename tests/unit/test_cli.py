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
