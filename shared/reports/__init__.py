"""Reports: what each scenario did and earned, counted off the event path (shared.reports.store holds the keys)."""
