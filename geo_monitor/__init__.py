"""geo_monitor: anonymised monitoring of public space in north-east Paris.

The library stores, validates, aggregates and analyses events in PostGIS, and decides what
each role may see. It knows nothing of the API, the maps or the command line that assemble
it. Sub-packages follow the data flow: ``store`` -> ``analysis`` -> ``privacy``; ``zones``
beside them. See README.md and docs/architecture.md.
"""

__version__ = "0.1.0"
