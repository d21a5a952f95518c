-- Works sites that touch the study area; with a window [start, end), those active in it
-- (a NULL bound or a NULL date leaves that side open).
SELECT w.id, w.street, w.purpose, w.owner, w.starts_at, w.ends_at, w.arrondissement, w.geom
FROM works_sites w, study_area s
WHERE ST_Intersects(w.geom, s.geom)
  AND (%(end)s::date IS NULL OR w.starts_at IS NULL OR w.starts_at < %(end)s::date)
  AND (%(start)s::date IS NULL OR w.ends_at IS NULL OR w.ends_at >= %(start)s::date)
ORDER BY w.id
