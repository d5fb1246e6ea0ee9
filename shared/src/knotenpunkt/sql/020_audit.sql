-- The audit trail (knotenpunkt.audit, docs/decisions/0012-identity.md): one row per API call of
-- a person, agency or service, reads included; who, when, which records and persons, action,
-- purpose, outcome. Never the personal data itself: ids only (pseudonymous client ids, staff ids).
CREATE TABLE audit_log (
    seq            bigserial PRIMARY KEY,
    at             timestamptz NOT NULL,
    service        text NOT NULL,
    actor_kind     text NOT NULL,
    actor_id       text NOT NULL,
    roles          text[] NOT NULL DEFAULT '{}',
    offices        text[] NOT NULL DEFAULT '{}',
    agency_id      text,
    via            text,
    action         text NOT NULL,
    method         text NOT NULL,
    route          text NOT NULL,
    record_ids     text[] NOT NULL DEFAULT '{}',
    client_ids     uuid[] NOT NULL DEFAULT '{}',
    purpose        text NOT NULL,
    outcome        text NOT NULL CHECK (outcome IN ('allowed', 'denied', 'refused', 'failed')),
    status         integer NOT NULL,
    reason         text,
    correlation_id text NOT NULL,
    client_address text,
    -- Tamper evidence: hash = sha256(prev_hash || the row's canonical JSON); `python -m
    -- knotenpunkt.audit verify` recomputes the chain.
    prev_hash      text NOT NULL,
    hash           text NOT NULL
);
CREATE INDEX audit_log_clients ON audit_log USING gin (client_ids);
CREATE INDEX audit_log_actor ON audit_log (actor_id, at);
CREATE INDEX audit_log_at ON audit_log (at);

-- Append-only: no update, no delete, no truncate; only the retention job deletes old rows, and
-- it says so in its transaction (SET LOCAL knotenpunkt.audit_retention = 'on').
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('knotenpunkt.audit_retention', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP;
END;
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
