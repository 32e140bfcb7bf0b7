-- Decision links in approval emails: each lets one approver decide one request at the step it
-- was sent for, without signing in, until it expires or is used. Only the secret's digest is
-- kept (as for sign-in links).
CREATE TABLE approval_links (
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    token_hash  TEXT NOT NULL,
    request_id  BLOB NOT NULL,
    step        INTEGER NOT NULL,
    approver_id BLOB NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_at     TEXT,
    PRIMARY KEY (tenant_id, token_hash),
    FOREIGN KEY (tenant_id, request_id) REFERENCES approval_requests (tenant_id, id),
    FOREIGN KEY (tenant_id, approver_id) REFERENCES users (tenant_id, id)
);
