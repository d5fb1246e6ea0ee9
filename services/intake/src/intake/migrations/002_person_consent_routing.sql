-- Code lists and rules are data: a city changes them without a release.
CREATE TABLE residence_statuses (
    code     text PRIMARY KEY,
    label_de text NOT NULL,
    label_en text NOT NULL,
    -- Unsecured statuses route to the social counselling of refugees at any age.
    secure   boolean NOT NULL
);
INSERT INTO residence_statuses (code, label_de, label_en, secure) VALUES
    ('settlement_permit', 'Niederlassungserlaubnis', 'Settlement permit', true),
    ('residence_permit', 'Aufenthaltserlaubnis', 'Residence permit', true),
    ('asylum_procedure', 'Aufenthaltsgestattung (Asylverfahren)', 'Permission to stay during the asylum procedure', false),
    ('toleration', 'Duldung', 'Toleration', false),
    ('eu_free_movement', 'EU-Freizügigkeit', 'EU free movement', true),
    ('german_citizen', 'Deutsche Staatsangehörigkeit', 'German citizen', true),
    ('unknown', 'Unbekannt', 'Unknown', true);

CREATE TABLE routing_rules (
    rule_id            text PRIMARY KEY,
    service_line       text NOT NULL,
    min_age            integer,           -- inclusive; NULL: no lower bound
    max_age            integer,           -- exclusive; NULL: no upper bound
    residence_statuses text[],            -- NULL: any status
    unsecured_only     boolean NOT NULL DEFAULT false,
    active             boolean NOT NULL DEFAULT true,
    description        text NOT NULL
);
INSERT INTO routing_rules (rule_id, service_line, min_age, max_age, unsecured_only, active, description) VALUES
    ('jmd', 'JMD', 12, 27, false, true, 'Jugendmigrationsdienst: young people from 12 up to 27'),
    ('mbe', 'MBE', 27, NULL, false, true, 'Migrationsberatung für Erwachsene: from 27'),
    ('refugee', 'REFUGEE', NULL, NULL, true, true, 'Social counselling of refugees: unsecured residence status, any age'),
    ('kim', 'KIM', 12, NULL, false, false,
     'KIM case management across the service lines; switch on where the city runs it for everyone');

ALTER TABLE offices ADD COLUMN district text;
ALTER TABLE offices ADD COLUMN languages text[] NOT NULL DEFAULT '{}';
ALTER TABLE offices ADD COLUMN service_lines text[] NOT NULL DEFAULT '{JMD,MBE,REFUGEE,KIM}';
UPDATE offices SET district = 'Hamborn', languages = '{de,en,tr,ar,bg,ro}' WHERE office_id = 'rsc-hamborn';
UPDATE offices SET district = 'Hochfeld', languages = '{de,en,tr,ro,bg,pl}' WHERE office_id = 'rsc-hochfeld';
UPDATE offices SET district = 'Rheinhausen', languages = '{de,en,ru,tr,pl}' WHERE office_id = 'rsc-rheinhausen';

CREATE TABLE staff (
    staff_id      text PRIMARY KEY,
    office_id     text NOT NULL REFERENCES offices (office_id),
    display_name  text NOT NULL,
    fte           numeric(3, 2) NOT NULL CHECK (fte > 0 AND fte <= 1),
    service_lines text[] NOT NULL
);
INSERT INTO staff (staff_id, office_id, display_name, fte, service_lines) VALUES
    ('staff-hamborn-1', 'rsc-hamborn', 'Fallmanagement Hamborn 1', 1.0, '{KIM,MBE}'),
    ('staff-hamborn-2', 'rsc-hamborn', 'Jugendmigrationsdienst Hamborn', 0.5, '{JMD}'),
    ('staff-hochfeld-1', 'rsc-hochfeld', 'Fallmanagement Hochfeld 1', 1.0, '{KIM,MBE,REFUGEE}'),
    ('staff-hochfeld-2', 'rsc-hochfeld', 'Jugendmigrationsdienst Hochfeld', 1.0, '{JMD}'),
    ('staff-rheinhausen-1', 'rsc-rheinhausen', 'Fallmanagement Rheinhausen 1', 1.0, '{KIM,MBE,JMD}');

-- The person record. Birth data may be a full date, only a year, or unknown.
ALTER TABLE clients ALTER COLUMN birth_date DROP NOT NULL;
ALTER TABLE clients ADD COLUMN birth_year integer;
ALTER TABLE clients ADD COLUMN name_variants text[] NOT NULL DEFAULT '{}';
ALTER TABLE clients ADD COLUMN phonetic_names text[] NOT NULL DEFAULT '{}';
ALTER TABLE clients ADD COLUMN gender text NOT NULL DEFAULT 'not_stated';
ALTER TABLE clients ADD COLUMN nationalities text[] NOT NULL DEFAULT '{}';
ALTER TABLE clients ADD COLUMN languages text[] NOT NULL DEFAULT '{}';
ALTER TABLE clients ADD COLUMN counselling_language text;
ALTER TABLE clients ADD COLUMN street text;
ALTER TABLE clients ADD COLUMN postcode text;
ALTER TABLE clients ADD COLUMN city text;
ALTER TABLE clients ADD COLUMN district text;
ALTER TABLE clients ADD COLUMN household_members jsonb NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN residence_status text NOT NULL DEFAULT 'unknown' REFERENCES residence_statuses (code);
ALTER TABLE clients ADD COLUMN arrival_date date;
ALTER TABLE clients ADD COLUMN access_route text;
ALTER TABLE clients ADD COLUMN service_lines text[] NOT NULL DEFAULT '{}';
ALTER TABLE clients ADD COLUMN merged_into uuid REFERENCES clients (client_id);
ALTER TABLE clients ADD COLUMN version integer NOT NULL DEFAULT 1;
ALTER TABLE clients ADD COLUMN handover_raised_on date;
UPDATE clients SET birth_year = extract(year FROM birth_date)::int, service_lines = ARRAY[service_line];
CREATE INDEX clients_phonetic ON clients USING gin (phonetic_names);

CREATE TABLE consents (
    consent_id      uuid PRIMARY KEY,
    client_id       uuid NOT NULL REFERENCES clients (client_id),
    purpose         text NOT NULL,
    agency_id       text,
    agency_kind     text,
    data_categories text[] NOT NULL,
    text_version    text NOT NULL,
    given_on        date NOT NULL,
    valid_until     date,
    withdrawn_on    date,
    expired_on      date,
    recorded_by     text NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX consents_by_client ON consents (client_id);
