-- The case manager's work: persons known from intake's events, assignment, transfer, closing
-- and reopening, consultations with mode and language, topics and closing reasons as data,
-- the integration support plan, referrals as cases sees them, and each case's history.

-- The persons cases knows, from ClientRegistered (no personal data: intake keeps that).
-- A retired record (ClientsMerged) points to the surviving one; a merge may arrive before the
-- retired record's registration (they are keyed by different ids), hence the nullable columns.
CREATE TABLE persons (
    client_id     uuid PRIMARY KEY,
    office_id     text,
    service_line  text,
    registered_at timestamptz,
    merged_into   uuid
);
-- Databases from before this migration knew persons only through their cases.
INSERT INTO persons (client_id, office_id, service_line, registered_at)
SELECT DISTINCT ON (client_id) client_id, office_id, service_line, opened_at FROM cases ORDER BY client_id, opened_at;

ALTER TABLE cases
    ADD COLUMN case_manager_id text,
    ADD COLUMN opened_by_hand  boolean NOT NULL DEFAULT false,
    ADD COLUMN closed_at       timestamptz,
    ADD COLUMN close_reason    text,
    ADD COLUMN updated_at      timestamptz NOT NULL DEFAULT now();
-- A person may have several cases in one service line over the years, but one open at a time.
ALTER TABLE cases DROP CONSTRAINT cases_client_id_service_line_key;
CREATE UNIQUE INDEX cases_one_open_per_line ON cases (client_id, service_line) WHERE status = 'open';
CREATE INDEX cases_by_client ON cases (client_id, opened_at);
CREATE INDEX cases_page ON cases (opened_at DESC, case_id DESC);
CREATE INDEX cases_by_manager ON cases (case_manager_id, opened_at DESC) WHERE case_manager_id IS NOT NULL;

-- Counselling topics: a code list kept as data, so a city adds its own without a release.
CREATE TABLE topics (
    code       text PRIMARY KEY,
    label_de   text NOT NULL,
    label_en   text NOT NULL,
    built_in   boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO topics (code, label_de, label_en, built_in) VALUES
    ('residence_law', 'Aufenthaltsrecht', 'Residence law', true),
    ('residence_obligation', 'Wohnsitzauflage', 'Residence obligation', true),
    ('housing', 'Wohnen', 'Housing', true),
    ('homelessness', 'Wohnungslosigkeit', 'Homelessness', true),
    ('family_reunification', 'Familiennachzug', 'Family reunification', true),
    ('marriage_separation', 'Ehe und Trennung', 'Marriage and separation', true),
    ('debts', 'Schulden', 'Debts', true),
    ('insurance', 'Versicherungen', 'Insurance', true),
    ('health_disability', 'Gesundheit und Behinderung', 'Health and disability', true),
    ('language_integration_course', 'Sprach- und Integrationskurs', 'Language and integration course', true),
    ('school', 'Schule', 'School', true),
    ('vocational_training', 'Ausbildung und Praktikum', 'Vocational training and internships', true),
    ('work', 'Arbeit und Arbeitssuche', 'Work and job search', true),
    ('benefits', 'Leistungen (Jobcenter, Sozialamt)', 'Benefits (Jobcenter, social welfare office)', true),
    ('recognition_of_qualifications', 'Anerkennung von Abschlüssen', 'Recognition of qualifications', true),
    ('group_offer', 'Gruppenangebot', 'Group offer', true);

-- Reasons to close or transfer a case: code lists kept as data, like the topics.
CREATE TABLE reason_codes (
    kind     text NOT NULL CHECK (kind IN ('close', 'transfer')),
    code     text NOT NULL,
    label_de text NOT NULL,
    label_en text NOT NULL,
    PRIMARY KEY (kind, code)
);
INSERT INTO reason_codes (kind, code, label_de, label_en) VALUES
    ('close', 'goals_reached', 'Ziele erreicht', 'Goals reached'),
    ('close', 'moved_away', 'Weggezogen', 'Moved away'),
    ('close', 'no_contact', 'Kein Kontakt mehr', 'No contact any more'),
    ('close', 'handed_over', 'An eine andere Stelle übergeben', 'Handed over to another service'),
    ('close', 'duplicate_record', 'Doppelt erfasste Person (zusammengeführt)', 'Duplicate record (merged)'),
    ('close', 'other', 'Anderer Grund', 'Other reason'),
    ('transfer', 'caseload', 'Fallzahlen ausgleichen', 'Balancing caseloads'),
    ('transfer', 'moved_within_city', 'Umzug innerhalb der Stadt', 'Moved within the city'),
    ('transfer', 'language', 'Beratungssprache', 'Counselling language'),
    ('transfer', 'staff_absence', 'Abwesenheit der Fallmanagerin / des Fallmanagers', 'Case manager absent'),
    ('transfer', 'other', 'Anderer Grund', 'Other reason');

ALTER TABLE consultations
    ADD COLUMN mode             text NOT NULL DEFAULT 'in_person',
    ADD COLUMN language         text,
    ADD COLUMN interpreter_used boolean NOT NULL DEFAULT false,
    ADD COLUMN case_manager_id  text;
-- "Cases with a consultation on topic X".
CREATE INDEX consultations_by_topic ON consultations USING gin (topics);

-- The integration support plan. The description is free text and stays here, like notes.
CREATE TABLE plan_goals (
    goal_id     uuid PRIMARY KEY,
    case_id     uuid NOT NULL REFERENCES cases (case_id),
    topic_code  text NOT NULL REFERENCES topics (code),
    description text,
    target_date date,
    status      text NOT NULL DEFAULT 'open',
    set_at      timestamptz NOT NULL,
    changed_at  timestamptz NOT NULL
);
CREATE INDEX plan_goals_by_case ON plan_goals (case_id, set_at);

-- Referrals as cases sees them, from the referrals lifecycle topic. Answers may be seen before
-- the ReferralSent they answer only in odd orders (a merge), so everything but the id is optional.
CREATE TABLE referrals (
    referral_id   uuid PRIMARY KEY,
    case_id       uuid,
    client_id     uuid,
    agency_id     text,
    topic_code    text,
    status        text NOT NULL,
    sent_at       timestamptz,
    answer_due_on date,
    detail        text,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX referrals_by_case ON referrals (case_id);

-- Every event of a case, in the order it happened: the history in the case overview. The
-- events carry no personal data, so neither does this table.
CREATE TABLE case_history (
    id          bigserial PRIMARY KEY,
    case_id     uuid NOT NULL REFERENCES cases (case_id),
    event_id    uuid NOT NULL,
    event_type  text NOT NULL,
    occurred_at timestamptz NOT NULL,
    data        jsonb NOT NULL
);
CREATE INDEX case_history_by_case ON case_history (case_id, id);
