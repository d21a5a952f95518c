"""OGC API Features at /ogc: the collections, their features held in columns, and GeoJSON pages."""
