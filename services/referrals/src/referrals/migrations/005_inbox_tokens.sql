-- The web inbox acts for an agency only with that agency's token. Only a hash is stored: a
-- leaked database does not leak working tokens.
CREATE TABLE agency_tokens (
    token_hash text PRIMARY KEY,
    agency_id  text NOT NULL REFERENCES agencies (agency_id),
    issued_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
CREATE INDEX agency_tokens_by_agency ON agency_tokens (agency_id);
