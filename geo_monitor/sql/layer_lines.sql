-- Rail lines that come within `edge` degrees of the study area, clipped to that margin;
-- `modes` NULL keeps every mode.
SELECT l.line, l.mode, l.colour, ST_Intersection(l.geom, ST_Buffer(s.geom, %(edge)s)) AS geom
FROM rail_lines l, study_area s
WHERE (%(modes)s::text[] IS NULL OR l.mode = ANY(%(modes)s::text[]))
  AND ST_DWithin(l.geom, s.geom, %(edge)s)
ORDER BY l.id  -- the order of the source file
