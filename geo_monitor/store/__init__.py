"""The store: read source files, validate and generalise events, COPY them in, keep rollups."""
