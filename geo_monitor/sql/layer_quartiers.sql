-- The quartiers administratifs of the study area.
SELECT q.code, q.arrondissement, q.name, q.geom
FROM quartiers q, study_area s
WHERE q.arrondissement = ANY(s.codes)
ORDER BY q.code
