-- Signed-in sessions, kept server-side: the browser holds only a random id in a cookie (its
-- SHA-256 is the key here), the tokens never leave the server. Deleted at sign-out, after idle
-- or maximum time (housekeeping in web.sessions).
CREATE TABLE web_sessions (
    session_hash text PRIMARY KEY,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen    timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    data         jsonb NOT NULL
);
CREATE INDEX web_sessions_expires ON web_sessions (expires_at);
