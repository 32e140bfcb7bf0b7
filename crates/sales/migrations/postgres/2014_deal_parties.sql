-- Who is on a deal besides its owner: the customer's people with their role in the buying
-- decision, and the competitors in the running. Part of the deal: replaced as a whole at the
-- deal's version.
CREATE TABLE opportunity_contacts (
    tenant_id      UUID NOT NULL REFERENCES tenants(id),
    opportunity_id UUID NOT NULL,
    contact_id     UUID NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('decision_maker', 'influencer', 'champion', 'evaluator', 'user', 'blocker', 'other')),
    position       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, opportunity_id, contact_id),
    FOREIGN KEY (tenant_id, opportunity_id) REFERENCES opportunities (tenant_id, id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id)
);
CREATE INDEX opportunity_contacts_contact ON opportunity_contacts (tenant_id, contact_id);

CREATE TABLE opportunity_competitors (
    tenant_id      UUID NOT NULL REFERENCES tenants(id),
    opportunity_id UUID NOT NULL,
    position       BIGINT NOT NULL,
    name           TEXT NOT NULL,
    note           TEXT,
    PRIMARY KEY (tenant_id, opportunity_id, position),
    FOREIGN KEY (tenant_id, opportunity_id) REFERENCES opportunities (tenant_id, id)
);
CREATE INDEX opportunity_competitors_name ON opportunity_competitors (tenant_id, name);
