-- Sales targets: an amount per rep or per team for a period (`2026-12` a month, `2026-Q4` a
-- quarter), which the forecast is read against.
CREATE TABLE sales_targets (
    tenant_id  BLOB NOT NULL REFERENCES tenants (id),
    id         BLOB NOT NULL,
    period     TEXT NOT NULL,
    user_id    BLOB,
    team_id    BLOB,
    amount     INTEGER NOT NULL CHECK (amount >= 0),
    currency   TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by BLOB,
    version    INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id),
    FOREIGN KEY (tenant_id, team_id) REFERENCES teams (tenant_id, id),
    CHECK ((user_id IS NULL) <> (team_id IS NULL))
);
CREATE UNIQUE INDEX sales_targets_user ON sales_targets (tenant_id, period, user_id) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX sales_targets_team ON sales_targets (tenant_id, period, team_id) WHERE team_id IS NOT NULL;
