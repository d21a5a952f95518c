-- Stations in the study area or within `edge` degrees of it (a station on a boundary boulevard
-- serves both sides), one row per station and line; `modes` NULL keeps every mode.
SELECT st.station_id, st.name, st.line, st.mode, st.arrondissement, st.geom
FROM stations st, study_area s
WHERE (%(modes)s::text[] IS NULL OR st.mode = ANY(%(modes)s::text[]))
  AND ST_DWithin(st.geom, s.geom, %(edge)s)
ORDER BY st.name, st.line, st.station_id
