"""A/B statistics against published and hand-computed values (shared.reports.stats)."""

from __future__ import annotations

import math

import pytest

from shared.reports import stats


def test_wilson_matches_newcombes_published_interval() -> None:
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", example 81/263: 0.2553 to 0.3662
    found = stats.wilson(81, 263)
    assert found.rate == pytest.approx(81 / 263)
    assert (round(found.low or 0, 4), round(found.high or 0, 4)) == (0.2553, 0.3662)


def test_wilson_at_zero_successes_still_has_an_upper_bound_where_walds_would_be_zero() -> None:
    found = stats.wilson(0, 10)
    assert found.low == 0.0
    assert found.high == pytest.approx(0.2775, abs=1e-4)  # (z²/n) / (1 + z²/n): 3.8415/13.8415
    assert stats.wilson(10, 10).high == pytest.approx(1.0)


def test_wilson_without_trials_has_no_rate() -> None:
    assert stats.wilson(0, 0) == stats.Interval(None, None, None)
    with pytest.raises(ValueError, match="successes <= trials"):
        stats.wilson(3, 2)


def test_the_z_test_p_value_is_the_pooled_two_sided_one() -> None:
    # 15 % of 100 against 30 % of 100: pooled 0.225, z = 0.15 / sqrt(0.225 * 0.775 * 0.02) = 2.5398, p = 0.0111
    assert stats.z_test(15, 100, 30, 100) == pytest.approx(0.01109, abs=1e-4)
    assert stats.z_test(0, 50, 0, 50) == 1.0


def test_fisher_exact_matches_the_classic_examples() -> None:
    # Fisher's lady tasting tea, [[3, 1], [1, 3]]: two-sided p = 34/70
    assert stats.fisher_exact(3, 4, 1, 4) == pytest.approx(34 / 70)
    # [[1, 9], [11, 3]] (the textbook example of Fisher's test): two-sided p = 0.002759
    assert stats.fisher_exact(1, 10, 11, 14) == pytest.approx(0.002759, abs=1e-6)
    assert stats.fisher_exact(2, 10, 2, 10) == pytest.approx(1.0)


def test_small_counts_go_to_fishers_test_large_ones_to_the_z_test() -> None:
    assert stats.compare(1, 20, 4, 20).test == "Fisher's exact test"  # 2.5 expected clicks per variant
    assert stats.compare(40, 400, 60, 400).test == "two-proportion z-test"


def test_no_winner_while_the_difference_is_not_significant() -> None:
    found = stats.verdict([stats.Arm("a", 10, 200), stats.Arm("b", 14, 200)])
    assert found.winner is None
    assert not found.significant
    assert found.text.startswith("no significant difference yet on click rate")
    assert found.sends_needed is not None
    assert found.sends_needed > 200


def test_a_winner_when_the_difference_is_significant() -> None:
    found = stats.verdict([stats.Arm("a", 20, 1000), stats.Arm("b", 60, 1000)])
    assert found.winner == "b"
    assert found.significant
    assert found.test == "two-proportion z-test"
    assert found.p_value is not None
    assert found.p_value < 0.001
    assert found.text.startswith("b wins on click rate")


def test_three_variants_hold_each_comparison_to_a_bonferroni_level() -> None:
    # b beats c clearly but a only at p ≈ 0.04: significant alone, not at 0.05 / 2
    arms = [stats.Arm("a", 50, 1000), stats.Arm("b", 72, 1000), stats.Arm("c", 20, 1000)]
    assert 0.025 < stats.z_test(72, 1000, 50, 1000) < 0.05
    found = stats.verdict(arms)
    assert found.winner is None
    assert found.alpha == pytest.approx(0.025)
    clear = stats.verdict([stats.Arm("a", 20, 1000), stats.Arm("b", 70, 1000), stats.Arm("c", 20, 1000)])
    assert clear.winner == "b"
    assert "Bonferroni" in clear.text


def test_a_variant_without_sends_decides_nothing() -> None:
    found = stats.verdict([stats.Arm("a", 3, 10), stats.Arm("b", 0, 0)])
    assert found.winner is None
    assert "no sends" in found.text


def test_sends_needed_for_two_and_three_percent_is_the_textbook_figure() -> None:
    # 80 % power, 5 % two-sided, 2 % against 3 %: about 3,800 per group (normal approximation)
    assert stats.sends_needed(0.02, 0.03) == pytest.approx(3823, abs=5)
    assert stats.sends_needed(0.1, 0.1) is None
    assert math.isclose(stats._normal_quantile(0.975), stats.Z95, abs_tol=1e-9)
