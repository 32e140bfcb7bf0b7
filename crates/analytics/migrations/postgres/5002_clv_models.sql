-- Lifetime-value models: BG/NBD and Gamma-Gamma fitted on a calibration period, kept with
-- their parameters, log-likelihoods and holdout check; a fit that failed is kept with why.
-- Each fitted model's prediction per customer beside it.
CREATE TABLE clv_models (
    tenant_id          UUID NOT NULL REFERENCES tenants (id),
    id                 UUID NOT NULL,
    party              TEXT NOT NULL CHECK (party IN ('accounts', 'contacts')),
    calibration_from   TEXT NOT NULL,
    calibration_to     TEXT NOT NULL,
    holdout_to         TEXT,
    months             BIGINT NOT NULL,
    annual_discount_bp BIGINT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('fitted', 'failed')),
    failure            TEXT,
    customers          BIGINT NOT NULL,
    repeat_buyers      BIGINT NOT NULL,
    r                  DOUBLE PRECISION,
    alpha              DOUBLE PRECISION,
    a                  DOUBLE PRECISION,
    b                  DOUBLE PRECISION,
    p                  DOUBLE PRECISION,
    q                  DOUBLE PRECISION,
    gamma              DOUBLE PRECISION,
    log_likelihood     DOUBLE PRECISION,
    gamma_gamma_log_likelihood DOUBLE PRECISION,
    iterations         BIGINT NOT NULL,
    fit_ms             BIGINT NOT NULL,
    holdout            JSONB,
    created_at         TIMESTAMPTZ NOT NULL,
    created_by         UUID,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX clv_models_created ON clv_models (tenant_id, party, created_at);

CREATE TABLE clv_predictions (
    tenant_id          UUID NOT NULL,
    model_id           UUID NOT NULL,
    customer_id        UUID NOT NULL,
    purchases          BIGINT NOT NULL,
    weeks_to_last      DOUBLE PRECISION NOT NULL,
    weeks_observed     DOUBLE PRECISION NOT NULL,
    mean_value         DOUBLE PRECISION NOT NULL,
    p_alive            DOUBLE PRECISION NOT NULL,
    expected_purchases DOUBLE PRECISION NOT NULL,
    expected_value     BIGINT,
    PRIMARY KEY (tenant_id, model_id, customer_id),
    FOREIGN KEY (tenant_id, model_id) REFERENCES clv_models (tenant_id, id)
);
CREATE INDEX clv_predictions_value ON clv_predictions (tenant_id, model_id, expected_value);
