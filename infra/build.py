"""Build steps: scenarios -> compiled ASL and catalogue (the Makefile's build-* targets make what SAM deploys)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.campaigns import document
from shared.journeys import compiler, declarations, loader, loops, policies, scenario
from shared.people.topics import TOPICS

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
COMPILED = SCENARIOS / "compiled"
TEMPLATES = ROOT / "templates"
CAMPAIGNS = ROOT / "campaigns"


@dataclass(frozen=True)
class Compiled:
    scenarios: dict[str, scenario.Scenario]
    files: dict[str, str]  # path relative to the project -> content

    def definition(self, scenario_id: str) -> dict[str, Any]:
        return json.loads(self.files[f"scenarios/compiled/{scenario_id}.asl.json"])  # type: ignore[no-any-return]


def scenario_files(scenarios_dir: Path = SCENARIOS) -> list[Path]:
    """The scenario files of a folder: every YAML file but the declarations, the sending habits, the scoring and the
    lists."""
    return [
        path
        for path in sorted(scenarios_dir.glob("*.yaml"))
        if path.name not in (declarations.DECLARATIONS, policies.SENDING, policies.SCORING, declarations.LISTS)
    ]


def compile_all(scenarios_dir: Path = SCENARIOS, templates_dir: Path = TEMPLATES) -> Compiled:
    """Every scenario validated and compiled; raises ScenarioError for the first problem found."""
    loaded = {}
    files = {}
    policy = policies.load_sending(scenarios_dir / policies.SENDING)
    for path in scenario_files(scenarios_dir):
        model = loader.load(path, templates_dir)
        loaded[model.id] = model
        files[f"scenarios/compiled/{model.id}.asl.json"] = compiler.to_json(compiler.compile_scenario(model, policy))
    declared = declarations.load_declarations(scenarios_dir / declarations.DECLARATIONS)
    dynamic = declarations.load_lists(scenarios_dir / declarations.LISTS)
    order = declarations.check_lists(dynamic, list(loaded.values()), declared, scenarios_dir)
    # A dynamic list is filled by its rule: scenarios may read it like a list they fill.
    filled = declarations.Declarations(declared.lists | frozenset(dynamic), declared.attributes)
    declarations.check_references(list(loaded.values()), filled, scenarios_dir)
    rules = policies.load_scoring(scenarios_dir / policies.SCORING)  # read at run time by the process function
    loops.check(list(loaded.values()), dynamic, rules, scenarios_dir)  # no scenarios starting each other for ever
    ordered = [{"name": n, "description": dynamic[n].description, "if": dynamic[n].condition} for n in order]
    files["scenarios/compiled/lists.json"] = json.dumps({"lists": ordered}, indent=2, sort_keys=True) + "\n"
    catalogue = {model.id: compiler.catalogue_entry(model) for model in loaded.values()}
    files["scenarios/compiled/catalogue.json"] = json.dumps(catalogue, indent=2, sort_keys=True) + "\n"
    files["scenarios/compiled/scoring.json"] = json.dumps(rules.to_dict(), indent=2, sort_keys=True) + "\n"
    # What a campaign needs at run time (shared.campaigns): the lists something fills, the sending habits per topic
    filling = {r.name for model in loaded.values() for r in model.references if r.kind == "list" and r.writes}
    known = sorted(filling | set(filled.lists))
    campaigns = {"lists": known, "pacing": {topic: policy.payload("email", topic, "defer") for topic in TOPICS}}
    campaigns["sms_pacing"] = {topic: policy.payload("sms", topic, "skip") for topic in TOPICS}  # SMS campaigns
    files["scenarios/compiled/campaigns.json"] = json.dumps(campaigns, indent=2, sort_keys=True) + "\n"
    files["campaigns/schema.json"] = json.dumps(document.json_schema(), indent=2, ensure_ascii=False) + "\n"
    return Compiled(loaded, files)


def write(compiled: Compiled, root: Path = ROOT) -> list[str]:
    """Writes the compiled files, removes those of deleted scenarios; returns what changed."""
    changed = []
    target = root / "scenarios" / "compiled"
    target.mkdir(parents=True, exist_ok=True)
    (root / "campaigns").mkdir(exist_ok=True)
    for relative, content in compiled.files.items():
        path = root / relative
        if not path.exists() or path.read_text(encoding="utf-8") != content:
            path.write_text(content, encoding="utf-8")
            changed.append(relative)
    for stale in target.glob("*.json"):
        if f"scenarios/compiled/{stale.name}" not in compiled.files:
            stale.unlink()
            changed.append(f"scenarios/compiled/{stale.name} (removed)")
    return changed


def stale_files(compiled: Compiled, root: Path = ROOT) -> list[str]:
    """Compiled files on disk that differ from what the scenarios compile to now."""
    wrong = [
        rel
        for rel, content in compiled.files.items()
        if not (root / rel).exists() or (root / rel).read_text(encoding="utf-8") != content
    ]
    extra = [
        f"scenarios/compiled/{p.name}"
        for p in (root / "scenarios" / "compiled").glob("*.json")
        if f"scenarios/compiled/{p.name}" not in compiled.files
    ]
    return wrong + extra
