"""Coordination zones: drawn polygons with teams and schedules, their history, summaries and gaps."""
