-- A snapshot's inputs are kept as [value, score] pairs in the order of the run's scheme, which
-- names each one's dimension, metric and weight: those were repeated in every customer's row
-- (a million rows, half a gigabyte of names).
UPDATE grading_scores SET inputs = (
    SELECT COALESCE(json_group_array(json_array(e.value -> '$.value', e.value -> '$.score')), '[]')
    FROM json_each(grading_scores.inputs) e
);
