-- The partner directory is data. Seeded with the Duisburg partners named in the domain notes.
CREATE TABLE agencies (
    agency_id     text PRIMARY KEY,
    name          text NOT NULL,
    kind          text NOT NULL,
    response_days integer NOT NULL,
    channel       text NOT NULL DEFAULT 'kafka'
);
INSERT INTO agencies (agency_id, name, kind, response_days, channel) VALUES
    ('jobcenter-duisburg', 'Jobcenter Duisburg', 'jobcenter', 10, 'kafka'),
    ('auslaenderbehoerde-duisburg', 'Ausländerbehörde Duisburg', 'auslaenderbehoerde', 14, 'inbox'),
    ('jugendamt-duisburg', 'Jugendamt Duisburg', 'jugendamt', 10, 'inbox'),
    ('agentur-fuer-arbeit-duisburg', 'Agentur für Arbeit Duisburg', 'agentur_fuer_arbeit', 10, 'kafka');

-- Cases this service knows from CaseOpened: a referral must come from a real case.
CREATE TABLE known_cases (
    case_id      uuid PRIMARY KEY,
    client_id    uuid NOT NULL,
    service_line text NOT NULL,
    office_id    text NOT NULL
);

CREATE TABLE referrals (
    referral_id    uuid PRIMARY KEY,
    case_id        uuid NOT NULL REFERENCES known_cases (case_id),
    client_id      uuid NOT NULL,
    agency_id      text NOT NULL REFERENCES agencies (agency_id),
    topic_code     text NOT NULL,
    office_id      text NOT NULL,
    status         text NOT NULL,
    sent_at        timestamptz NOT NULL,
    answered_at    timestamptz,
    decline_reason text
);
CREATE INDEX referrals_by_case ON referrals (case_id);
