CREATE TABLE cases (
    case_id      uuid PRIMARY KEY,
    client_id    uuid NOT NULL,
    service_line text NOT NULL,
    office_id    text NOT NULL,
    status       text NOT NULL DEFAULT 'open',
    opened_at    timestamptz NOT NULL,
    version      integer NOT NULL DEFAULT 1,
    -- One open case per person and service line: a redelivered registration opens nothing new.
    UNIQUE (client_id, service_line)
);
CREATE INDEX cases_by_office ON cases (office_id, service_line, status);

-- The free-text note stays here; it never travels in an event.
CREATE TABLE consultations (
    consultation_id           uuid PRIMARY KEY,
    case_id                   uuid NOT NULL REFERENCES cases (case_id),
    held_on                   date NOT NULL,
    duration_minutes          integer NOT NULL,
    topics                    text[] NOT NULL,
    family_members_counselled integer NOT NULL,
    note                      text,
    recorded_at               timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX consultations_by_case ON consultations (case_id);
