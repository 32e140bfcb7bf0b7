-- Lifetime-value models: BG/NBD and Gamma-Gamma fitted on a calibration period, kept with
-- their parameters, log-likelihoods and holdout check; a fit that failed is kept with why.
-- Each fitted model's prediction per customer beside it.
CREATE TABLE clv_models (
    tenant_id          BLOB NOT NULL REFERENCES tenants (id),
    id                 BLOB NOT NULL,
    party              TEXT NOT NULL CHECK (party IN ('accounts', 'contacts')),
    calibration_from   TEXT NOT NULL,
    calibration_to     TEXT NOT NULL,
    holdout_to         TEXT,
    months             INTEGER NOT NULL,
    annual_discount_bp INTEGER NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('fitted', 'failed')),
    failure            TEXT,
    customers          INTEGER NOT NULL,
    repeat_buyers      INTEGER NOT NULL,
    r                  REAL,
    alpha              REAL,
    a                  REAL,
    b                  REAL,
    p                  REAL,
    q                  REAL,
    gamma              REAL,
    log_likelihood     REAL,
    gamma_gamma_log_likelihood REAL,
    iterations         INTEGER NOT NULL,
    fit_ms             INTEGER NOT NULL,
    holdout            TEXT,
    created_at         TEXT NOT NULL,
    created_by         BLOB,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX clv_models_created ON clv_models (tenant_id, party, created_at);

CREATE TABLE clv_predictions (
    tenant_id          BLOB NOT NULL,
    model_id           BLOB NOT NULL,
    customer_id        BLOB NOT NULL,
    purchases          INTEGER NOT NULL,
    weeks_to_last      REAL NOT NULL,
    weeks_observed     REAL NOT NULL,
    mean_value         REAL NOT NULL,
    p_alive            REAL NOT NULL,
    expected_purchases REAL NOT NULL,
    expected_value     INTEGER,
    PRIMARY KEY (tenant_id, model_id, customer_id),
    FOREIGN KEY (tenant_id, model_id) REFERENCES clv_models (tenant_id, id)
);
CREATE INDEX clv_predictions_value ON clv_predictions (tenant_id, model_id, expected_value);
