-- The search index now also holds runs of four digits (customers::normalize::grams): the
-- records whose search text has four digits in a row get their tokens again
-- (search::backfill_grams fills every NULL `grams` at startup, before serving).
UPDATE accounts SET grams = NULL WHERE search GLOB '*[0-9][0-9][0-9][0-9]*';
UPDATE contacts SET grams = NULL WHERE search GLOB '*[0-9][0-9][0-9][0-9]*';
