import xml.etree.ElementTree as ET

from infra import build, graph
from shared.journeys import compiler
from shared.journeys.loader import load
from tests.conftest import ROOT

BRANCHING = compiler.compile_scenario(load(ROOT / "tests/fixtures/scenarios/branching.yaml", ROOT / "templates"))


def test_mermaid_draws_every_state_that_runs_with_labelled_branches() -> None:
    text = graph.mermaid(BRANCHING)
    assert text.startswith("flowchart TD\n")
    for name in BRANCHING["States"]:
        if name != "Step failed" and name not in graph.folded(BRANCHING):
            assert f'"{name}"' in text
    assert "Step failed" not in text
    assert "Held back?" not in text  # a send's deferral loop is folded into the send
    assert text.count("-->|yes|") == 2
    assert text.count("-->|no|") == 2
    assert "-->|30%|" in text
    assert "-->|70%|" in text


def test_the_svg_is_well_formed_with_a_box_per_state_and_an_arrow_per_transition() -> None:
    root = ET.fromstring(graph.svg(BRANCHING, "Every kind of step"))
    namespace = "{http://www.w3.org/2000/svg}"
    drawn = [name for name in BRANCHING["States"] if name != "Step failed" and name not in graph.folded(BRANCHING)]
    assert len(root.findall(f"{namespace}rect")) == len(drawn)
    arrows = root.findall(f"{namespace}line") + root.findall(f"{namespace}polyline")
    assert len(arrows) == len(graph.edges(BRANCHING))
    labels = {text.text for text in root.findall(f"{namespace}text")}
    assert set(drawn) <= labels
    assert "Every kind of step" in labels


def test_arrows_point_down_from_each_state_to_the_next() -> None:
    root = ET.fromstring(graph.svg(BRANCHING, "t"))
    for line in root.findall("{http://www.w3.org/2000/svg}line"):
        assert float(line.get("y2", "0")) > float(line.get("y1", "0"))


def test_a_wait_for_step_is_drawn_with_its_event_and_timeout_branches() -> None:
    waiting = compiler.compile_scenario(load(ROOT / "tests/fixtures/scenarios/waiting.yaml", ROOT / "templates"))
    text = graph.mermaid(waiting)
    assert text.count("-->|event|") == 1
    assert text.count("-->|timeout|") == 1


def test_the_readme_shows_the_onboarding_graph_as_it_is_compiled_now() -> None:
    drawn = graph.mermaid(build.compile_all().definition("onboarding"))
    assert f"```mermaid\n{drawn}```" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_a_capped_scenario_draws_its_leave_task_and_keeps_the_failure_path_in_words() -> None:
    capped = compiler.compile_scenario(load(ROOT / "tests/fixtures/scenarios/capped.yaml", ROOT / "templates"))
    text = graph.mermaid(capped)
    assert '"Leave"' in text
    assert "Leave after a failure" not in text
    assert "Step failed" not in text
    root = ET.fromstring(graph.svg(capped, "Two at a time"))
    drawn = len(capped["States"]) - 2 - len(graph.folded(capped))  # Leave after a failure, Step failed, the loops
    assert len(root.findall("{http://www.w3.org/2000/svg}rect")) == drawn


def test_a_marketing_send_is_drawn_going_on_to_its_next_step_its_deferral_loop_folded() -> None:
    # Given the welcome series, whose sends the sending habits may hold back (two Passes and a Wait each)
    welcome = build.compile_all().definition("welcome")
    assert len(graph.folded(welcome)) == 12
    # When it is drawn, Then each send leads to the next wait and the picture has no cycle
    text = graph.mermaid(welcome)
    assert "Wait until e1-welcome may go" not in text
    edges = {(edge.source, edge.target) for edge in graph.edges(welcome)}
    assert ("Send email e1-welcome", "Wait 2d until J+2") in edges
    assert ET.fromstring(graph.svg(welcome, "Welcome")) is not None
