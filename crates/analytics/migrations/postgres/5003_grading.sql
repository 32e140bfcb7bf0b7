-- 4V grading: the scheme an admin configures per party (four dimensions, each a weighted score
-- of measures and custom fields), the runs that evaluate every customer with it as of a day
-- (queued, run in the background with progress, one per party and day), and each run's
-- snapshot of every customer's scores, rank and grade A–E.
CREATE TABLE grading_schemes (
    tenant_id   UUID NOT NULL REFERENCES tenants (id),
    id          UUID NOT NULL,
    party       TEXT NOT NULL CHECK (party IN ('accounts', 'contacts')),
    scheme      JSONB NOT NULL,
    version     BIGINT NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    updated_by  UUID,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX grading_schemes_party ON grading_schemes (tenant_id, party);

CREATE TABLE grading_runs (
    tenant_id    UUID NOT NULL REFERENCES tenants (id),
    id           UUID NOT NULL,
    party        TEXT NOT NULL CHECK (party IN ('accounts', 'contacts')),
    as_of        TEXT NOT NULL,
    period_from  TEXT NOT NULL,
    scheme       JSONB NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    attempt      BIGINT NOT NULL,
    done         BIGINT NOT NULL,
    total        BIGINT NOT NULL,
    counts       JSONB NOT NULL,
    changed      BIGINT NOT NULL,
    applied      BOOLEAN NOT NULL,
    error        TEXT,
    created_at   TIMESTAMPTZ NOT NULL,
    created_by   UUID,
    updated_at   TIMESTAMPTZ NOT NULL,
    finished_at  TIMESTAMPTZ,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX grading_runs_as_of ON grading_runs (tenant_id, party, as_of);
CREATE INDEX grading_runs_waiting ON grading_runs (status, updated_at) WHERE status IN ('queued', 'running');

CREATE TABLE grading_scores (
    tenant_id    UUID NOT NULL,
    run_id       UUID NOT NULL,
    customer_id  UUID NOT NULL,
    rank         BIGINT NOT NULL,
    grade        TEXT NOT NULL CHECK (grade IN ('A', 'B', 'C', 'D', 'E')),
    previous     TEXT,
    tied         BOOLEAN NOT NULL,
    total        BIGINT NOT NULL,
    economic     BIGINT NOT NULL,
    relational   BIGINT NOT NULL,
    functional   BIGINT NOT NULL,
    development  BIGINT NOT NULL,
    inputs       JSONB NOT NULL,
    PRIMARY KEY (tenant_id, run_id, customer_id),
    FOREIGN KEY (tenant_id, run_id) REFERENCES grading_runs (tenant_id, id)
);
CREATE INDEX grading_scores_rank ON grading_scores (tenant_id, run_id, rank);
CREATE INDEX grading_scores_customer ON grading_scores (tenant_id, customer_id);
