"""Analyses on the store: hexagon counts, Gi* and emerging hotspots, works impact, coverage."""
