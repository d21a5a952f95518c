"""The plan: objectives, partners, actions, their append-only updates, places, and its indicators."""
