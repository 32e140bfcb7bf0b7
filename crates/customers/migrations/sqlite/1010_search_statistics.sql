-- PostgreSQL only (the planner statistics of its GIN search index); SQLite's FTS5 table needs
-- nothing.
SELECT 1;
