-- 4V grading: the scheme an admin configures per party (four dimensions, each a weighted score
-- of measures and custom fields), the runs that evaluate every customer with it as of a day
-- (queued, run in the background with progress, one per party and day), and each run's
-- snapshot of every customer's scores, rank and grade A–E.
CREATE TABLE grading_schemes (
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    id          BLOB NOT NULL,
    party       TEXT NOT NULL CHECK (party IN ('accounts', 'contacts')),
    scheme      TEXT NOT NULL,
    version     INTEGER NOT NULL,
    updated_at  TEXT NOT NULL,
    updated_by  BLOB,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX grading_schemes_party ON grading_schemes (tenant_id, party);

CREATE TABLE grading_runs (
    tenant_id    BLOB NOT NULL REFERENCES tenants (id),
    id           BLOB NOT NULL,
    party        TEXT NOT NULL CHECK (party IN ('accounts', 'contacts')),
    as_of        TEXT NOT NULL,
    period_from  TEXT NOT NULL,
    scheme       TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    attempt      INTEGER NOT NULL,
    done         INTEGER NOT NULL,
    total        INTEGER NOT NULL,
    counts       TEXT NOT NULL,
    changed      INTEGER NOT NULL,
    applied      INTEGER NOT NULL,
    error        TEXT,
    created_at   TEXT NOT NULL,
    created_by   BLOB,
    updated_at   TEXT NOT NULL,
    finished_at  TEXT,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX grading_runs_as_of ON grading_runs (tenant_id, party, as_of);
CREATE INDEX grading_runs_waiting ON grading_runs (status, updated_at) WHERE status IN ('queued', 'running');

CREATE TABLE grading_scores (
    tenant_id    BLOB NOT NULL,
    run_id       BLOB NOT NULL,
    customer_id  BLOB NOT NULL,
    rank         INTEGER NOT NULL,
    grade        TEXT NOT NULL CHECK (grade IN ('A', 'B', 'C', 'D', 'E')),
    previous     TEXT,
    tied         INTEGER NOT NULL,
    total        INTEGER NOT NULL,
    economic     INTEGER NOT NULL,
    relational   INTEGER NOT NULL,
    functional   INTEGER NOT NULL,
    development  INTEGER NOT NULL,
    inputs       TEXT NOT NULL,
    PRIMARY KEY (tenant_id, run_id, customer_id),
    FOREIGN KEY (tenant_id, run_id) REFERENCES grading_runs (tenant_id, id)
);
CREATE INDEX grading_scores_rank ON grading_scores (tenant_id, run_id, rank);
CREATE INDEX grading_scores_customer ON grading_scores (tenant_id, customer_id);
