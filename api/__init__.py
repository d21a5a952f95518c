"""The geo_monitor HTTP API (FastAPI): the library served to planners, police, outreach and the public."""
