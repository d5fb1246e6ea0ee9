-- Read models: anonymous facts keyed by ids, no names, no birth dates. Rebuildable from the log.
-- Columns are filled by whichever event arrives first, so events may come in any order.
CREATE TABLE persons (
    client_id     uuid PRIMARY KEY,
    registered_at timestamptz,
    age_band      text,
    service_line  text,
    office_id     text
);

CREATE TABLE cases (
    case_id      uuid PRIMARY KEY,
    client_id    uuid NOT NULL,
    service_line text,
    office_id    text,
    opened_at    timestamptz,
    closed_at    timestamptz
);

CREATE TABLE consultations (
    consultation_id           uuid PRIMARY KEY,
    case_id                   uuid NOT NULL,
    client_id                 uuid NOT NULL,
    service_line              text NOT NULL,
    office_id                 text NOT NULL,
    held_on                   date NOT NULL,
    family_members_counselled integer NOT NULL
);

CREATE TABLE referrals (
    referral_id uuid PRIMARY KEY,
    agency_id   text NOT NULL,
    topic_code  text,
    office_id   text,
    sent_at     timestamptz,
    accepted_at timestamptz,
    declined_at timestamptz
);
