"""The statistics of a report, pure (no AWS, no clock), on the standard library alone: the admin function runs them
and scipy would weigh tens of megabytes in its layer.

- A rate's 95 % confidence interval: Wilson's score interval. The usual "p ± 1.96 √(p(1-p)/n)" (Wald) collapses to
  [0, 0] at 0 successes and covers the true rate far less often than 95 % at the small counts and the rates near 0
  of email (a 2 % click rate over 200 sends); Wilson's stays inside [0, 1] and keeps close to 95 % coverage there
  (Brown, Cai & DasGupta, "Interval Estimation for a Binomial Proportion", Statistical Science, 2001).
- Whether two variants differ: the two-proportion z-test (pooled) when every cell of the 2 × 2 table expects 5 or
  more, else Fisher's exact test (two-sided: the tables at most as likely as the one seen), which needs no
  large-sample approximation. More than two variants: the best one against each other one, each test at
  5 % / (variants - 1) (Bonferroni), so that the chance of declaring a false winner stays under 5 %; a winner only
  when it beats every other variant so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Z95 = 1.959963984540054  # the standard normal's 97.5th percentile
Z80 = 0.8416212335729143  # its 80th: power of 80 %, for the sends a test would need
ALPHA = 0.05
MIN_EXPECTED = 5  # below this expected count in a cell the z-test's normal approximation is not trusted


@dataclass(frozen=True)
class Interval:
    rate: float | None  # successes / trials; None without a trial
    low: float | None
    high: float | None


def wilson(successes: int, trials: int, z: float = Z95) -> Interval:
    """The rate and its Wilson score interval (95 % by default); (None, None, None) when there is no trial."""
    if trials < 0 or successes < 0 or successes > trials:
        raise ValueError(f"a rate needs 0 <= successes <= trials, got {successes} of {trials}")
    if trials == 0:
        return Interval(None, None, None)
    p = successes / trials
    z2 = z * z
    denominator = 1 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half))


def z_test(a: int, n_a: int, b: int, n_b: int) -> float:
    """The two-sided p-value of the pooled two-proportion z-test: a of n_a against b of n_b."""
    pooled = (a + b) / (n_a + n_b)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if spread == 0:  # both 0 % or both 100 %: no difference at all
        return 1.0
    z = (a / n_a - b / n_b) / spread
    return math.erfc(abs(z) / math.sqrt(2))


def _log_choose(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def fisher_exact(a: int, n_a: int, b: int, n_b: int) -> float:
    """The two-sided p-value of Fisher's exact test on [[a, n_a - a], [b, n_b - b]]: the sum of the probabilities of
    the tables with the same margins at most as likely as this one (as R's fisher.test and scipy's do)."""
    successes, total = a + b, n_a + n_b
    low, high = max(0, successes - n_b), min(successes, n_a)

    def log_p(x: int) -> float:  # hypergeometric: x of the successes in the first row
        return _log_choose(n_a, x) + _log_choose(n_b, successes - x) - _log_choose(total, successes)

    seen = log_p(a)
    tolerance = 1e-7  # relative: tables as likely as the one seen, up to rounding, count
    p = sum(math.exp(log_p(x)) for x in range(low, high + 1) if log_p(x) <= seen + tolerance)
    return min(1.0, p)


def expected_cells(a: int, n_a: int, b: int, n_b: int) -> float:
    """The smallest expected count of the 2 × 2 table's four cells under no difference."""
    total = n_a + n_b
    successes = a + b
    failures = total - successes
    return min(n * s / total for n in (n_a, n_b) for s in (successes, failures))


@dataclass(frozen=True)
class Comparison:
    test: str  # "two-proportion z-test" | "Fisher's exact test"
    p_value: float


def compare(a: int, n_a: int, b: int, n_b: int) -> Comparison:
    """a of n_a against b of n_b: the z-test when every cell expects MIN_EXPECTED or more, else Fisher's."""
    if n_a == 0 or n_b == 0:
        raise ValueError("a comparison needs trials in both groups")
    if expected_cells(a, n_a, b, n_b) >= MIN_EXPECTED:
        return Comparison("two-proportion z-test", z_test(a, n_a, b, n_b))
    return Comparison("Fisher's exact test", fisher_exact(a, n_a, b, n_b))


def sends_needed(p_a: float, p_b: float, alpha: float = ALPHA) -> int | None:
    """Trials per group for an 80 %-power two-sided test at `alpha` to tell p_a from p_b, were they the true
    rates (the usual normal approximation); None when they are equal."""
    if p_a == p_b:
        return None
    z_alpha = _normal_quantile(1 - alpha / 2)
    mean = (p_a + p_b) / 2
    top = z_alpha * math.sqrt(2 * mean * (1 - mean)) + Z80 * math.sqrt(p_a * (1 - p_a) + p_b * (1 - p_b))
    return math.ceil((top / (p_a - p_b)) ** 2)


def _normal_quantile(q: float) -> float:
    """The standard normal's quantile, by bisection on erfc (a handful of calls per report)."""
    low, high = -10.0, 10.0
    for _ in range(100):
        middle = (low + high) / 2
        if 0.5 * math.erfc(-middle / math.sqrt(2)) < q:
            low = middle
        else:
            high = middle
    return (low + high) / 2


@dataclass(frozen=True)
class Arm:
    name: str
    successes: int
    trials: int


@dataclass(frozen=True)
class Verdict:
    winner: str | None  # the variant declared better, only when the difference is significant
    significant: bool
    test: str | None  # the test of the deciding comparison (the closest one when there is a winner)
    p_value: float | None  # that comparison's
    alpha: float  # the level each comparison was held to (5 %, divided by the comparisons made)
    text: str
    sends_needed: int | None = None  # per variant, at the rates seen, when not significant yet


def verdict(arms: Sequence[Arm], what: str = "click rate", alpha: float = ALPHA) -> Verdict:
    """Which variant wins on `what`, if any: the best rate against each other one (module docstring)."""
    if len(arms) < 2:
        raise ValueError("a verdict needs two variants or more")
    measured = [arm for arm in arms if arm.trials > 0]
    if len(measured) < len(arms):
        return Verdict(None, False, None, None, alpha, "no significant difference yet: a variant has no sends yet")
    level = alpha / (len(arms) - 1)
    best = max(arms, key=lambda arm: arm.successes / arm.trials)
    others = [arm for arm in arms if arm is not best]
    comparisons = [(other, compare(best.successes, best.trials, other.successes, other.trials)) for other in others]
    closest, comparison = max(comparisons, key=lambda pair: pair[1].p_value)
    if comparison.p_value < level and best.successes / best.trials > closest.successes / closest.trials:
        corrected = f", Bonferroni: each at {level:.4g}" if len(arms) > 2 else ""
        text = (
            f"{best.name} wins on {what} (p = {comparison.p_value:.3g} against {closest.name}, "
            f"{comparison.test}{corrected})"
        )
        return Verdict(best.name, True, comparison.test, comparison.p_value, level, text)
    needed = sends_needed(best.successes / best.trials, closest.successes / closest.trials, level)
    text = f"no significant difference yet on {what} (p = {comparison.p_value:.3g}, {comparison.test})"
    return Verdict(None, False, comparison.test, comparison.p_value, level, text, needed)
