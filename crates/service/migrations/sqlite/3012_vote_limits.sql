-- A help-centre visitor's votes are told apart by a digest of their address (never the
-- address itself): one vote per article a day counts, and an address votes a bounded number of
-- times an hour.
ALTER TABLE article_votes ADD COLUMN voter TEXT;
CREATE INDEX article_votes_voter ON article_votes (tenant_id, voter, at);
