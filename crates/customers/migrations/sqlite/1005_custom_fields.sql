-- Custom fields: definitions per entity (values live in each record's `custom` JSON), and the
-- values of unique fields, held here so a unique constraint enforces them on both databases.
CREATE TABLE custom_fields (
    tenant_id     BLOB NOT NULL REFERENCES tenants (id),
    id            BLOB NOT NULL,
    entity        TEXT NOT NULL,
    key           TEXT NOT NULL,
    label         TEXT NOT NULL,
    labels        TEXT NOT NULL,
    kind          TEXT NOT NULL,
    options       TEXT NOT NULL,
    required      INTEGER NOT NULL,
    is_unique     INTEGER NOT NULL,
    default_value TEXT,
    section       TEXT NOT NULL,
    position      INTEGER NOT NULL,
    archived_at   TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    created_by    BLOB,
    updated_by    BLOB,
    version       INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, entity, key)
);

CREATE TABLE custom_unique (
    tenant_id BLOB NOT NULL REFERENCES tenants (id),
    entity    TEXT NOT NULL,
    field_key TEXT NOT NULL,
    value     TEXT NOT NULL,
    record_id BLOB NOT NULL,
    PRIMARY KEY (tenant_id, entity, field_key, value)
);
CREATE INDEX custom_unique_record ON custom_unique (tenant_id, entity, record_id);
