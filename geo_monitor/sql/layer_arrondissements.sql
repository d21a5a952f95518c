-- The arrondissements of the study area.
SELECT a.code, a.number, a.name, a.geom
FROM arrondissements a, study_area s
WHERE a.code = ANY(s.codes)
ORDER BY a.code
