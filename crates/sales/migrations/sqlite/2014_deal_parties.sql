-- Who is on a deal besides its owner: the customer's people with their role in the buying
-- decision, and the competitors in the running. Part of the deal: replaced as a whole at the
-- deal's version.
CREATE TABLE opportunity_contacts (
    tenant_id      BLOB NOT NULL REFERENCES tenants (id),
    opportunity_id BLOB NOT NULL,
    contact_id     BLOB NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('decision_maker', 'influencer', 'champion', 'evaluator', 'user', 'blocker', 'other')),
    position       INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, opportunity_id, contact_id),
    FOREIGN KEY (tenant_id, opportunity_id) REFERENCES opportunities (tenant_id, id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id)
);
CREATE INDEX opportunity_contacts_contact ON opportunity_contacts (tenant_id, contact_id);

CREATE TABLE opportunity_competitors (
    tenant_id      BLOB NOT NULL REFERENCES tenants (id),
    opportunity_id BLOB NOT NULL,
    position       INTEGER NOT NULL,
    name           TEXT NOT NULL,
    note           TEXT,
    PRIMARY KEY (tenant_id, opportunity_id, position),
    FOREIGN KEY (tenant_id, opportunity_id) REFERENCES opportunities (tenant_id, id)
);
CREATE INDEX opportunity_competitors_name ON opportunity_competitors (tenant_id, name);
