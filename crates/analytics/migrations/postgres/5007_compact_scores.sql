-- A snapshot's inputs are kept as [value, score] pairs in the order of the run's scheme, which
-- names each one's dimension, metric and weight: those were repeated in every customer's row
-- (a million rows, half a gigabyte of names).
UPDATE grading_scores SET inputs = (
    SELECT COALESCE(jsonb_agg(jsonb_build_array(x.e -> 'value', x.e -> 'score') ORDER BY x.i), '[]'::jsonb)
    FROM jsonb_array_elements(grading_scores.inputs) WITH ORDINALITY AS x(e, i)
);
