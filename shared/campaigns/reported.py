"""The campaigns a report shows (GET /v1/reports/scenarios, `parcours report`, the HTML page): each campaign started,
as the reports' layout of it (shared.reports.layout.CampaignLayout), read from the campaigns table's list of those
started (one Query)."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.campaigns import ab, document
from shared.campaigns.store import Store
from shared.reports import layout, queries
from shared.settings import Settings
from shared.storage import StorageError


def layouts(settings: Settings) -> list[layout.CampaignLayout]:
    """Every campaign started, with its A/B test's variants; none when the deployment has no campaigns table."""
    if not settings.campaigns_table:
        return []
    try:
        started = Store(settings.campaigns_table, settings.region).started()
    except StorageError as error:  # StorageBusy too: the report answers 503, retry later
        raise queries.ReportsUnavailable(f"the campaigns cannot be listed ({error})") from None
    found = []
    for entry in started:
        variants: tuple[tuple[str, int], ...] = ()
        deciding = "clicked"
        if entry.get("ab"):
            test = document.ab_of(entry["ab"])
            variants = tuple((v.name, ab.share(test)) for v in test.variants)
            deciding = ab.DECIDING[test.metric]
        moment = datetime.fromisoformat(str(entry["started_at"])).astimezone(UTC)
        found.append(
            layout.CampaignLayout(
                id=str(entry["id"]),
                name=str(entry.get("name") or entry["id"]),
                started_at=moment.isoformat(),
                variants=variants,
                deciding=deciding,
            )
        )
    return found
