"""The `geo-monitor` command and the demo: they assemble the library, the maps and the API."""
