"""geo_monitor: anonymised monitoring of public space in north-east Paris.

The library knows nothing of the API or the maps: it stores, validates, aggregates
and analyses events in PostGIS. See README.md and ../shared/DESIGN.md.
"""

__version__ = "0.1.0"
