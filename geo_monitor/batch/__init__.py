"""The batch path on Dask distributed: monthly rollups and space-time cubes from the event lake."""
