-- `ogr2ogr -f GPKG` of the zones failed: GDAL copies NOT NULL onto the GeoPackage column and
-- writes an empty text[] (a zone without partners) as NULL there. The same rule as a CHECK
-- constraint keeps the data as strict in PostgreSQL and is not copied by GDAL.
ALTER TABLE zones ADD CONSTRAINT zones_partner_teams_not_null CHECK (partner_teams IS NOT NULL);
ALTER TABLE zones ALTER COLUMN partner_teams DROP NOT NULL;
