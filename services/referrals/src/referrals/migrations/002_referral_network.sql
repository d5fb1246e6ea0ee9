-- The referral network: the partner directory in full, the whole lifecycle with its deadlines,
-- the case managers behind the cases, and the gap register.

ALTER TABLE agencies
    ADD COLUMN topics    text[] NOT NULL DEFAULT '{}',
    ADD COLUMN languages text[] NOT NULL DEFAULT '{de}',
    ADD COLUMN contact   text,
    ADD CONSTRAINT agencies_kind CHECK (kind IN (
        'jobcenter', 'auslaenderbehoerde', 'jugendamt', 'sozialamt', 'schulamt', 'agentur_fuer_arbeit',
        'course_provider', 'ihk', 'handwerkskammer', 'welfare_organisation')),
    ADD CONSTRAINT agencies_channel CHECK (channel IN ('kafka', 'inbox')),
    ADD CONSTRAINT agencies_response_days CHECK (response_days BETWEEN 1 AND 90);

UPDATE agencies SET topics = '{work,benefits}', languages = '{de,en,tr,ru}',
    contact = 'Jobcenter Duisburg, Team Integration' WHERE agency_id = 'jobcenter-duisburg';
UPDATE agencies SET topics = '{residence_law,residence_obligation,family_reunification}', languages = '{de,en}',
    contact = 'Ausländerbehörde Duisburg, Servicestelle' WHERE agency_id = 'auslaenderbehoerde-duisburg';
UPDATE agencies SET topics = '{family,school,housing}', languages = '{de}',
    contact = 'Jugendamt Duisburg, Sozialer Dienst' WHERE agency_id = 'jugendamt-duisburg';
UPDATE agencies SET topics = '{work,vocational_training,internship}', languages = '{de,en}',
    contact = 'Agentur für Arbeit Duisburg, Berufsberatung' WHERE agency_id = 'agentur-fuer-arbeit-duisburg';

-- The other Duisburg partners named in the domain sources (articles on the RSC network and the
-- AWO network meeting): the city's offices, course providers and the welfare organisations.
INSERT INTO agencies (agency_id, name, kind, response_days, channel, topics, languages, contact) VALUES
    ('sozialamt-duisburg', 'Sozialamt Duisburg', 'sozialamt', 10, 'inbox',
        '{benefits,housing,homelessness,debts}', '{de}', 'Sozialamt Duisburg, Bürgerservice'),
    ('schulamt-duisburg', 'Amt für Schulische Bildung Duisburg', 'schulamt', 10, 'inbox',
        '{school}', '{de}', 'Amt für Schulische Bildung, Seiteneinstieg'),
    ('awo-campus-duisburg', 'AWO-Campus gGmbH', 'course_provider', 7, 'kafka',
        '{language_course,integration_course,vocational_training}', '{de,en,tr}', 'AWO-Campus, Kursberatung'),
    ('werkkiste-duisburg', 'Werkkiste Duisburg', 'welfare_organisation', 7, 'inbox',
        '{vocational_training,internship,work}', '{de}', 'Werkkiste, Jugendberufshilfe'),
    ('drk-duisburg', 'DRK Duisburg', 'welfare_organisation', 7, 'inbox',
        '{illness_disability,insurance,family}', '{de,en}', 'DRK Duisburg, Migrationsdienst'),
    ('caritas-duisburg', 'Caritasverband Duisburg', 'welfare_organisation', 7, 'inbox',
        '{debts,marriage_separation,family}', '{de,pl,ru}', 'Caritas Duisburg, Migrationsberatung'),
    ('diakoniewerk-duisburg', 'Diakoniewerk Duisburg', 'welfare_organisation', 7, 'inbox',
        '{housing,homelessness,debts}', '{de,en}', 'Diakoniewerk Duisburg, Standort Mitte'),
    ('ziuma-duisburg', 'Zentrum für Integrations- und Migrationsarbeit (ZIUMA e.V.)', 'welfare_organisation', 7,
        'inbox', '{residence_law,family_reunification,language_course}', '{de,ru,tr}', 'ZIUMA e.V., Beratung')
ON CONFLICT (agency_id) DO NOTHING;

ALTER TABLE known_cases ADD COLUMN case_manager_id text;
CREATE INDEX known_cases_by_case_manager ON known_cases (case_manager_id);

ALTER TABLE referrals
    ADD COLUMN consent_id       text,
    ADD COLUMN remind_at        timestamptz,
    ADD COLUMN due_at           timestamptz,
    ADD COLUMN reminded_at      timestamptz,
    ADD COLUMN completed_at     timestamptz,
    ADD COLUMN outcome          text,
    ADD COLUMN closed_at        timestamptz,
    ADD COLUMN withdraw_reason  text,
    ADD CONSTRAINT referrals_status CHECK (status IN ('sent', 'accepted', 'declined', 'completed', 'withdrawn', 'expired'));

-- Referrals sent before deadlines existed get them from their agency's promised time.
UPDATE referrals r SET
    remind_at = r.sent_at + a.response_days * interval '12 hours',
    due_at    = r.sent_at + a.response_days * interval '1 day'
FROM agencies a WHERE a.agency_id = r.agency_id;
ALTER TABLE referrals ALTER COLUMN remind_at SET NOT NULL, ALTER COLUMN due_at SET NOT NULL;

-- The deadline watcher looks only at unanswered referrals.
CREATE INDEX referrals_unanswered ON referrals (due_at) WHERE status = 'sent';
CREATE INDEX referrals_by_agency ON referrals (agency_id, status);

-- The gap register ("Lücken"): needs nobody could meet. One entry per referral at most.
CREATE TABLE unmet_needs (
    referral_id  uuid PRIMARY KEY REFERENCES referrals (referral_id),
    topic_code   text NOT NULL,
    agency_kind  text NOT NULL,
    agency_id    text NOT NULL,
    office_id    text NOT NULL,
    cause        text NOT NULL CHECK (cause IN ('no_capacity', 'expired')),
    recorded_at  timestamptz NOT NULL
);
CREATE INDEX unmet_needs_by_time ON unmet_needs (recorded_at);
