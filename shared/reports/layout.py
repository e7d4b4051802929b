"""What a report shows of each deployed scenario, read from the compiled catalogue (scenarios/compiled/
catalogue.json, `report` of each entry, written by shared.journeys.compiler.report_layout): its sending steps in
order, each in its split and variant, and its splits. The caller names the file (the admin function: the one its
package ships); this module imports no scenario code."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class StepLayout:
    id: str
    channel: str  # email | sms
    split: str | None  # the split step it is in (the innermost), if any
    variant: str | None


@dataclass(frozen=True)
class SplitLayout:
    id: str
    variants: tuple[tuple[str, int], ...]  # (name, percent), in the file's order


@dataclass(frozen=True)
class ScenarioLayout:
    id: str
    name: str
    steps: tuple[StepLayout, ...]
    splits: tuple[SplitLayout, ...] = ()


@dataclass(frozen=True)
class CampaignLayout:
    """A campaign started, as a report shows it: its one step (`email`, the SES tags' step of its sends) and, for
    an A/B test, its variants with their share of the audience; handed in by the caller (shared.campaigns)."""

    id: str
    name: str
    started_at: str  # ISO 8601
    variants: tuple[tuple[str, int], ...] = ()  # (name, percent of the audience), in the document's order
    deciding: str = "clicked"  # the A/B test's metric: clicked | opened

    @property
    def report(self) -> str:
        """The scenario name its sends carry, under which the reports count them."""
        return f"campaign.{self.id}"


def from_entry(scenario: str, entry: dict[str, Any]) -> ScenarioLayout:
    """A catalogue entry's layout (an entry compiled before layouts existed: no step known, the counters still are)."""
    report = entry.get("report") or {}
    return ScenarioLayout(
        id=scenario,
        name=str(report.get("name") or scenario),
        steps=tuple(
            StepLayout(str(step["id"]), str(step["channel"]), step.get("split"), step.get("variant"))
            for step in report.get("steps") or []
        ),
        splits=tuple(
            SplitLayout(str(split["id"]), tuple((str(v["name"]), int(v["percent"])) for v in split["variants"]))
            for split in report.get("splits") or []
        ),
    )


@lru_cache(maxsize=2)
def layouts(catalogue: Path) -> tuple[ScenarioLayout, ...]:
    """Every scenario of a compiled catalogue, sorted by id; read once per container."""
    data: dict[str, Any] = json.loads(catalogue.read_text(encoding="utf-8"))
    return tuple(from_entry(name, entry) for name, entry in sorted(data.items()))
