-- Offices are data, not code: the three Duisburg regional support centers as seed.
CREATE TABLE offices (
    office_id  text PRIMARY KEY,
    name       text NOT NULL,
    address    text NOT NULL,
    open_hours text NOT NULL
);
INSERT INTO offices (office_id, name, address, open_hours) VALUES
    ('rsc-hamborn', 'RSC Hamborn', 'Duisburger Straße 241, Duisburg', 'Mo 10–12, Mi 14–16'),
    ('rsc-hochfeld', 'RSC Hochfeld', 'Brückenstraße 30, Duisburg', 'Mo 10–12, Mi 14–16'),
    ('rsc-rheinhausen', 'RSC Rheinhausen', 'Beethovenstraße 18a, Duisburg', 'Mo 13–15, Do 10–12');

-- Personal data lives here and nowhere else.
CREATE TABLE clients (
    client_id     uuid PRIMARY KEY,
    family_name   text NOT NULL,
    given_name    text NOT NULL,
    birth_date    date NOT NULL,
    phone         text,
    email         text,
    office_id     text NOT NULL REFERENCES offices (office_id),
    service_line  text NOT NULL,
    registered_at timestamptz NOT NULL DEFAULT now()
);
