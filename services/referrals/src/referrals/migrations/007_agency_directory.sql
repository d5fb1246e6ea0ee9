-- Issue 9: the admin keeps the partner directory through the API (PUT /agencies/{id}) instead of SQL.
-- A deactivated agency gets no new referrals; its open ones stay and are followed up as before.
ALTER TABLE agencies
    ADD COLUMN active         boolean NOT NULL DEFAULT true,
    ADD COLUMN deactivated_at timestamptz,
    ADD COLUMN changed_at     timestamptz,
    ADD COLUMN changed_by     text;

-- The topic codes an agency may name: the network's one taxonomy (the codes cases keeps, GET /topics
-- on cases, to which 004 moved the seeded agencies). Kept here as data so the directory checks an
-- agency's topics without asking cases on every change.
CREATE TABLE topic_codes (
    code     text PRIMARY KEY,
    label_de text NOT NULL,
    label_en text NOT NULL
);
INSERT INTO topic_codes (code, label_de, label_en) VALUES
    ('residence_law', 'Aufenthaltsrecht', 'Residence law'),
    ('residence_obligation', 'Wohnsitzauflage', 'Residence obligation'),
    ('housing', 'Wohnen', 'Housing'),
    ('homelessness', 'Wohnungslosigkeit', 'Homelessness'),
    ('family_reunification', 'Familiennachzug', 'Family reunification'),
    ('marriage_separation', 'Ehe und Trennung', 'Marriage and separation'),
    ('debts', 'Schulden', 'Debts'),
    ('insurance', 'Versicherungen', 'Insurance'),
    ('health_disability', 'Gesundheit und Behinderung', 'Health and disability'),
    ('language_integration_course', 'Sprach- und Integrationskurs', 'Language and integration course'),
    ('school', 'Schule', 'School'),
    ('vocational_training', 'Ausbildung und Praktikum', 'Vocational training and internships'),
    ('work', 'Arbeit und Arbeitssuche', 'Work and job search'),
    ('benefits', 'Leistungen (Jobcenter, Sozialamt)', 'Benefits (Jobcenter, social welfare office)'),
    ('recognition_of_qualifications', 'Anerkennung von Abschlüssen', 'Recognition of qualifications'),
    ('group_offer', 'Gruppenangebot', 'Group offer'),
    ('family', 'Familie und Erziehung', 'Family and parenting')
ON CONFLICT (code) DO NOTHING;
