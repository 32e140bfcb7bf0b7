-- Custom fields: definitions per entity (values live in each record's `custom` JSON), and the
-- values of unique fields, held here so a unique constraint enforces them on both databases.
CREATE TABLE custom_fields (
    tenant_id     UUID NOT NULL REFERENCES tenants (id),
    id            UUID NOT NULL,
    entity        TEXT NOT NULL,
    key           TEXT NOT NULL,
    label         TEXT NOT NULL,
    labels        JSONB NOT NULL,
    kind          TEXT NOT NULL,
    options       JSONB NOT NULL,
    required      BOOLEAN NOT NULL,
    is_unique     BOOLEAN NOT NULL,
    default_value JSONB,
    section       TEXT NOT NULL,
    position      BIGINT NOT NULL,
    archived_at   TIMESTAMPTZ,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    created_by    UUID,
    updated_by    UUID,
    version       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, entity, key)
);

CREATE TABLE custom_unique (
    tenant_id UUID NOT NULL REFERENCES tenants (id),
    entity    TEXT NOT NULL,
    field_key TEXT NOT NULL,
    value     TEXT NOT NULL,
    record_id UUID NOT NULL,
    PRIMARY KEY (tenant_id, entity, field_key, value)
);
CREATE INDEX custom_unique_record ON custom_unique (tenant_id, entity, record_id);
