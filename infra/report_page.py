"""The report as one self-contained HTML page (`parcours report --html`, `/_local/report.html`): funnels, daily
series, steps, A/B results, deliverability per day against its thresholds, the seeds' benchmarks beside the figures
they judge. Charts are drawn by matplotlib as SVG inlined in the page: no script, no CDN, readable offline. Built on
the CLI's or the local runtime's side, never in a Lambda function (matplotlib is not in the layer).

Scenario and step ids come from files, but are escaped as untrusted (Jinja2's autoescape; matplotlib escapes the
text of its SVG)."""

from __future__ import annotations

import io
from datetime import date
from typing import Any

from jinja2 import Environment
from markupsafe import Markup

COLOURS = {"sent": "#4c78a8", "opened": "#f58518", "clicked": "#54a24b", "entered": "#72b7b2", "converted": "#b279a2"}
STATUS_COLOURS = {"ok": "#2e7d32", "within": "#2e7d32", "above": "#2e7d32", "watch": "#ef6c00", "below": "#c62828"}
STATUS_COLOURS |= {"over": "#c62828", "no data": "#757575"}


def percent(rate: float | None, digits: int = 1) -> str:
    """0.5234 -> "52.3 %"; "–" without a rate."""
    if rate is None:
        return "–"
    return f"{rate * 100:.{digits}f} %"


def amounts(revenue: dict[str, float]) -> str:
    """{"EUR": 42.0, "USD": 3.5} -> "42.00 EUR, 3.50 USD"; "–" when none."""
    return ", ".join(f"{amount:,.2f} {currency}" for currency, amount in revenue.items()) or "–"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "svg.fonttype": "none",  # text stays text: smaller, selectable, the browser's own font
            "font.family": "sans-serif",
            "font.size": 10,
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    )
    return plt


def _svg(figure: Any, salt: str) -> Markup:
    """The figure as an inline <svg> element: no XML prolog, no metadata (it names matplotlib's web site)."""
    plt = _pyplot()
    plt.rcParams["svg.hashsalt"] = salt  # ids unique per chart on the page, and the same from run to run
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(figure)
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    start, end = text.find("<metadata>"), text.find("</metadata>")
    if start != -1 and end != -1:
        text = text[:start] + text[end + len("</metadata>") :]
    return Markup(text)  # noqa: S704 (matplotlib's own SVG, its text escaped by matplotlib)


def funnel_chart(scenario: dict[str, Any]) -> Markup:
    """Entered -> sent -> delivered -> opened -> clicked -> converted, as horizontal bars with their counts (a
    campaign: from sent to clicked; nobody enters it, it has no goal)."""
    plt = _pyplot()
    campaign = scenario.get("kind") == "campaign"
    stages = [] if campaign else [("entered", "entered")]
    stages += [("sent", "emails sent"), ("delivered", "delivered"), ("opened", "opened"), ("clicked", "clicked")]
    stages += [] if campaign else [("converted", "converted (goal)")]
    values = [scenario[key] for key, _ in stages]
    figure, axes = plt.subplots(figsize=(5.2, 2.4))
    colours = ["#72b7b2", "#4c78a8", "#4c78a8", "#f58518", "#54a24b", "#b279a2"][1 if campaign else 0 :]
    bars = axes.barh([label for _, label in stages], values, color=colours)
    axes.invert_yaxis()
    axes.bar_label(bars, labels=[f"{v:,}" for v in values], padding=3)
    axes.set_xlim(0, max([*values, 1]) * 1.18)
    axes.xaxis.set_visible(False)
    axes.spines["bottom"].set_visible(False)
    axes.set_title("Funnel", loc="left", fontsize=11)
    return _svg(figure, f"funnel-{scenario.get('key', scenario['id'])}")


def daily_chart(scenario: dict[str, Any]) -> Markup:
    """Per day: entered, emails sent, opened, clicked, converted."""
    plt = _pyplot()
    days = [date.fromisoformat(day["day"]) for day in scenario["daily"]]
    figure, axes = plt.subplots(figsize=(6.4, 2.4))
    for key in ("entered", "sent", "opened", "clicked", "converted"):
        axes.plot(days, [day[key] for day in scenario["daily"]], label=key, color=COLOURS[key], linewidth=1.6)
    axes.set_ylim(bottom=0)
    axes.legend(loc="upper left", ncols=5, fontsize=8, frameon=False, bbox_to_anchor=(0, 1.18))
    _date_axis(axes)
    return _svg(figure, f"daily-{scenario.get('key', scenario['id'])}")


def _date_axis(axes: Any) -> None:
    """Few, short date labels (matplotlib's concise formatter: "Nov", "08", "15" ...), whatever the period."""
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(minticks=3, maxticks=7)  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    axes.tick_params(axis="x", labelsize=8)


def split_chart(scenario_id: str, split: dict[str, Any]) -> Markup:
    """Each variant's click rate with its 95 % interval."""
    plt = _pyplot()
    names = [variant["name"] for variant in split["variants"]]
    rates = [(variant["click"]["rate"] or 0.0) * 100 for variant in split["variants"]]
    lows = [
        rate - (variant["click"]["low"] or 0.0) * 100 for rate, variant in zip(rates, split["variants"], strict=True)
    ]
    highs = [
        (variant["click"]["high"] or 0.0) * 100 - rate for rate, variant in zip(rates, split["variants"], strict=True)
    ]
    figure, axes = plt.subplots(figsize=(4.2, 0.5 + 0.55 * len(names)))
    colours = ["#54a24b" if name == split["winner"] else "#9e9e9e" for name in names]
    axes.barh(names, rates, xerr=[lows, highs], color=colours, capsize=4, height=0.5)
    axes.invert_yaxis()
    axes.set_xlabel("click rate, % (bars: 95 % interval)")
    axes.set_xlim(left=0)
    return _svg(figure, f"split-{scenario_id}-{split['id']}")


def deliverability_chart(report: dict[str, Any]) -> Markup:
    """Delivery, bounce and complaint rates per day (days with sends), with their thresholds as dashed lines."""
    plt = _pyplot()
    days = [day for day in report["deliverability"]["days"] if day["sent"]]
    figure, (left, middle, right) = plt.subplots(1, 3, figsize=(10.5, 2.4))
    thresholds = {t["figure"]: t for t in report["deliverability"]["thresholds"]}
    for axes, figure_name, title, colour in (
        (left, "delivery", "delivered, %", "#4c78a8"),
        (middle, "bounce", "bounces, %", "#e45756"),
        (right, "complaint", "complaints, %", "#b279a2"),
    ):
        xs = [date.fromisoformat(day["day"]) for day in days if day["rates"][figure_name] is not None]
        ys = [day["rates"][figure_name] * 100 for day in days if day["rates"][figure_name] is not None]
        axes.plot(xs, ys, marker="o", markersize=3, color=colour, linewidth=1.4)
        line = thresholds[figure_name]
        axes.axhline(line["watch"] * 100, color="#ef6c00", linestyle="--", linewidth=1)
        axes.axhline(line["over"] * 100, color="#c62828", linestyle="--", linewidth=1)
        axes.set_title(title, loc="left", fontsize=10)
        _date_axis(axes)
        if figure_name == "delivery":
            axes.set_ylim(min([85.0, *ys]) - 1, 100.5)
        else:
            axes.set_ylim(0, max([line["over"] * 100 * 1.3, *ys]) * 1.1)
    return _svg(figure, "deliverability")


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>parcours report {{ report["from"] }} to {{ report["to"] }}</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #212121; margin: 0;
       background: #fafafa; }
main { max-width: 1120px; margin: 0 auto; padding: 24px; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 19px; margin: 32px 0 8px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.muted { color: #616161; font-size: 13px; }
section.card { background: #fff; border: 1px solid #e0e0e0; border-radius: 8px; padding: 16px 20px; margin: 16px 0; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 12.5px; margin: 6px 0; }
th, td { padding: 4px 6px; border-bottom: 1px solid #eee; text-align: right; white-space: nowrap; }
td.wrap { white-space: normal; text-align: left; min-width: 210px; }
details summary { cursor: pointer; color: #1565c0; font-size: 13px; margin: 6px 0; }
th { background: #f5f5f5; font-weight: 600; }
th:first-child, td:first-child { text-align: left; }
th:last-child { text-align: left; }
.badge { display: inline-block; border-radius: 10px; padding: 1px 8px; font-size: 12px; color: #fff; }
.bench { font-size: 12px; color: #424242; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
.charts svg { max-width: 100%; height: auto; }
.verdict { font-weight: 600; } .winner { color: #2e7d32; } .pending { color: #ef6c00; }
.retired { color: #9e9e9e; }
</style></head>
<body><main>
<h1>parcours report</h1>
{% set campaign_rows = scenarios|selectattr("kind", "equalto", "campaign")|list %}
<p class="muted">{{ report["from"] }} to {{ report["to"] }} (UTC days, both included) · {{ scenarios|length -
campaign_rows|length }} scenarios · {{ campaign_rows|length }} campaigns · rates over delivered emails, or over sent
ones where no delivery is known yet (marked “of sent”)</p>

<section class="card"><h2 style="margin-top:0">Summary</h2>
<div class="scroll"><table>
<tr><th>scenario or campaign</th><th>entered</th><th>emails sent</th><th>delivered</th><th>opened</th><th>clicked</th>
<th>converted</th><th>revenue<br><span class="muted">by last click</span></th><th>benchmark (seed)</th></tr>
{% for s in scenarios %}
<tr><td><a href="#scenario-{{ s.key }}">{{ s.name }}</a><br><span class="muted">{% if s.kind == "campaign" %}campaign
{{ s.id }}, started {{ s.started_at[:10] }}{% else %}{{ s.id }}{% endif %}</span></td>
<td>{{ "–" if s.kind == "campaign" else s.entered }}</td><td>{{ s.sent }}</td><td>{{ pct(s.rates.delivery) }}</td>
<td>{{ pct(s.rates.open) }}{% if s.rates.base == "sent" and s.sent %} <span class="muted">of sent</span>{% endif %}</td>
<td>{{ pct(s.rates.click) }}</td>
<td>{{ "–" if s.kind == "campaign" else s.converted ~ " (" ~ pct(s.rates.conversion) ~ ")" }}</td>
<td>{{ amounts(s.revenue) }}</td>
<td class="wrap">{% for b in s.benchmarks %}{{ bench(b) }}{% endfor %}</td></tr>
{% endfor %}
</table></div></section>

<section class="card"><h2 style="margin-top:0">Deliverability</h2>
{% set total = report.deliverability.total %}
<p>{{ total.sent }} emails sent: delivered {{ pct(total.rates.delivery, 2) }} {{ badge(total.status.delivery) }} ·
bounces {{ pct(total.rates.bounce, 2) }} {{ badge(total.status.bounce) }} ·
complaints {{ pct(total.rates.complaint, 3) }} {{ badge(total.status.complaint) }}
<span class="bench">· benchmark: {{ report.deliverability_benchmark.text }}
({{ report.deliverability_benchmark.status }})</span></p>
<ul class="muted">{% for t in report.deliverability.thresholds %}<li><b>{{ t.figure }}</b>: {{ t.text }}
{% if t.higher_is_better %}(watch below {{ pct(t.watch, 0) }}, over below {{ pct(t.over, 0) }}){% else %}(watch from
{{ pct(t.watch, 0 if t.watch >= 0.01 else 1) }}, over
from {{ pct(t.over, 0 if t.over >= 0.01 else 1) }}){% endif %}</li>
{% endfor %}</ul>
{% if delivery_chart %}<div class="charts">{{ delivery_chart }}</div>{% endif %}
{% set sending_days = report.deliverability.days|selectattr("sent")|list %}
{% if sending_days %}
{% if flagged %}<p><b>Days past a line:</b> {% for d in flagged %}{{ d.day }}
(delivered {{ pct(d.rates.delivery, 2) }} {{ badge(d.status.delivery) }}, bounces {{ pct(d.rates.bounce, 2) }}
{{ badge(d.status.bounce) }}, complaints {{ pct(d.rates.complaint, 3) }} {{ badge(d.status.complaint) }}){{ "; " if not
loop.last }}{% endfor %}</p>{% else %}<p>No day past a line.</p>{% endif %}
<details><summary>Every day ({{ sending_days|length }} days with sends)</summary>
<div class="scroll"><table><tr><th>day</th><th>sent</th><th>delivered</th><th>bounced</th><th>complained</th>
<th>delivery</th>
<th>bounce</th><th>complaint</th></tr>
{% for d in sending_days %}
<tr><td>{{ d.day }}</td><td>{{ d.sent }}</td><td>{{ d.delivered }}</td><td>{{ d.bounced }}</td>
<td>{{ d.complained }}</td>
<td>{{ pct(d.rates.delivery, 2) }} {{ badge(d.status.delivery) }}</td>
<td>{{ pct(d.rates.bounce, 2) }} {{ badge(d.status.bounce) }}</td>
<td>{{ pct(d.rates.complaint, 3) }} {{ badge(d.status.complaint) }}</td></tr>
{% endfor %}</table></div></details>
{% else %}<p class="muted">No email sent in this period.</p>{% endif %}
</section>

{% for s in scenarios if charts[s.key] %}
<section class="card" id="scenario-{{ s.key }}">
<h2 style="margin-top:0">{{ s.name }} <span class="muted">{{ "campaign " if s.kind == "campaign" }}{{ s.id }}</span>
</h2>
<p>{% if s.kind == "campaign" %}started {{ s.started_at[:16]|replace("T", " ") }} UTC{% else %}{{ s.entered }}
entered · {{ s.completed }} completed · {{ s.converted }} converted ({{ pct(s.rates.conversion) }}){% endif %} ·
{{ s.sent }} emails, {{ s.sms_sent }} SMS ·
opened {{ pct(s.rates.open) }} · clicked {{ pct(s.rates.click) }} · {{ s.orders }} orders attributed by a click:
<b>{{ amounts(s.revenue) }}</b>
{% if s.orders_open %}(by an open, counted apart: {{ s.orders_open }} orders, {{ amounts(s.revenue_open) }}){% endif %}
</p>
{% for b in s.benchmarks %}<p class="bench">{{ bench(b) }} {{ b.text }} ({{ b.source }})</p>{% endfor %}
<div class="charts">{{ charts[s.key].funnel }}{{ charts[s.key].daily }}</div>
<h3>Steps</h3>
<div class="scroll"><table><tr><th>step</th><th>sent</th><th>delivered</th><th>opened</th><th>clicked</th>
<th>bounced</th>
<th>complained</th><th>unsubscribed</th><th>deferred</th><th>capped</th><th>failed</th><th>orders</th><th>revenue</th>
</tr>
{% for st in s.steps %}
<tr{% if not st.in_scenario %} class="retired"{% endif %}><td>{{ st.id }}{% if st.variant %} <span class="muted">
({{ st.split }}: {{ st.variant }})</span>{% endif %}
{% if st.channel == "sms" %} <span class="muted">SMS</span>{% endif %}
{% if not st.in_scenario %} <span class="muted">(no longer in the scenario)</span>{% endif %}</td>
<td>{{ st.sms_sent if st.channel == "sms" else st.sent }}</td><td>{{ st.delivered }}</td>
<td>{{ st.opened }} <span class="muted">{{ pct(st.rates.open) }}</span></td>
<td>{{ st.clicked }} <span class="muted">{{ pct(st.rates.click) }}</span></td>
<td>{{ st.bounced }}</td><td>{{ st.complained }}</td><td>{{ st.unsubscribed }}</td><td>{{ st.deferred }}</td>
<td>{{ st.capped }}</td><td>{{ st.failed + st.sms_failed }}</td><td>{{ st.orders }}</td>
<td>{{ amounts(st.revenue) }}</td></tr>
{% endfor %}</table></div>
{% for sp in s.splits %}
<h3>A/B test: {{ sp.id }}</h3>
<p class="verdict {{ 'winner' if sp.winner else 'pending' }}">{{ sp.verdict }}{% if sp.sends_needed_per_variant %}
· about {{ "{:,}".format(sp.sends_needed_per_variant) }} sends per variant would tell this difference apart{% endif %}
</p>
<div class="charts">{{ charts[s.key].splits[sp.id] }}
<div class="scroll"><table style="width:auto"><tr><th>variant</th><th>share</th><th>sent</th><th>delivered</th>
<th>opened</th>
<th>open rate (95 % CI)</th><th>clicked</th><th>click rate (95 % CI)</th><th>orders</th><th>revenue</th></tr>
{% for v in sp.variants %}
<tr><td>{{ v.name }}{% if v.name == sp.winner %} ★{% endif %} <span class="muted">{{ v.steps|join(", ") }}</span></td>
<td>{{ v.percent }} %</td><td>{{ v.sent }}</td><td>{{ v.delivered }}</td><td>{{ v.opened }}</td>
<td>{{ ci(v.open) }}</td><td>{{ v.clicked }}</td><td>{{ ci(v.click) }}</td><td>{{ v.orders }}</td>
<td>{{ amounts(v.revenue) }}</td></tr>
{% endfor %}</table></div></div>
<p class="muted">Rates over {{ sp.base }} emails; {{ sp.test or "no test yet" }}{% if sp.p_value is not none %},
p = {{ "%.3g"|format(sp.p_value) }} (significant under {{ "%.3g"|format(sp.alpha) }}){% endif %}. A winner is declared
only when the {{ sp.metric }} rates differ significantly.</p>
{% endfor %}
</section>
{% endfor %}
{% set quiet = scenarios|rejectattr("key", "in", active)|list %}
{% if quiet %}<section class="card" id="quiet"><h2 style="margin-top:0">Nothing in this period</h2>
<p>{% for s in quiet %}<span id="scenario-{{ s.key }}">{{ s.name }} <span class="muted">({{ s.key }})</span></span>{{
", " if not loop.last }}{% endfor %}: no entry, no send, no order.</p>
</section>{% endif %}
<p class="muted">Counted off the event path from the tables' streams, each fact once; revenue attributed to the email
last clicked (and, counted apart, last opened) within the attribution windows, net of refunds and cancellations
(README, Reports).</p>
</main></body></html>
"""


def _badge(status: str) -> Markup:
    colour = STATUS_COLOURS.get(status, "#757575")
    return Markup('<span class="badge" style="background:{}">{}</span>').format(colour, status)


def _bench(benchmark: dict[str, Any]) -> Markup:
    high = f"–{benchmark['high'] * 100:.0f} %" if benchmark["high"] is not None else " % or more"
    low = f"{benchmark['low'] * 100:.0f}"
    where = f"{benchmark['step']} " if benchmark.get("step") else ""
    return Markup('<span class="bench">{}{} {}: seed {}{} </span>{}').format(
        where, benchmark["figure"], percent(benchmark["value"]), low, high, _badge(benchmark["status"])
    )


def _ci(interval: dict[str, float | None]) -> str:
    if interval["rate"] is None:
        return "–"
    return f"{percent(interval['rate'])} ({percent(interval['low'])}–{percent(interval['high'])})"


def _active(scenario: dict[str, Any]) -> bool:
    return any(scenario[key] for key in ("entered", "sent", "sms_sent", "converted", "orders"))


def page(report: dict[str, Any]) -> str:
    """The HTML page of a report (the admin route's answer)."""
    environment = Environment(autoescape=True)
    charts: dict[str, Any] = {}
    # A row's key: a scenario's id, a campaign's report name (campaign.<id>: a campaign may share a scenario's id)
    rows = [{**row, "key": row.get("report") or row["id"]} for row in report["scenarios"]]
    for scenario in rows:
        if not _active(scenario):
            charts[scenario["key"]] = None
            continue
        charts[scenario["key"]] = {
            "funnel": funnel_chart(scenario),
            "daily": daily_chart(scenario),
            "splits": {split["id"]: split_chart(scenario["key"], split) for split in scenario["splits"]},
        }
    sending = any(day["sent"] for day in report["deliverability"]["days"])
    template = environment.from_string(PAGE)
    return template.render(
        report=report,
        scenarios=rows,
        charts=charts,
        flagged=[
            day
            for day in report["deliverability"]["days"]
            if day["sent"] and any(status in ("watch", "over") for status in day["status"].values())
        ],
        active=[scenario_id for scenario_id, drawn in charts.items() if drawn],
        delivery_chart=deliverability_chart(report) if sending else None,
        pct=percent,
        amounts=amounts,
        badge=_badge,
        bench=_bench,
        ci=_ci,
    )
