-- The search index: `grams` holds the index tokens of the `search` text (see
-- customers::normalize::grams); a GIN index over its token array finds the rows having all of
-- a query's tokens; LIKE on `search` then confirms. (Exact tokens: no text-search parser or
-- locale is involved, so Chinese works under any collation.)
ALTER TABLE accounts ADD COLUMN grams TEXT;
ALTER TABLE contacts ADD COLUMN grams TEXT;
CREATE INDEX accounts_grams ON accounts USING gin (string_to_array(grams, ' '));
CREATE INDEX contacts_grams ON contacts USING gin (string_to_array(grams, ' '));
