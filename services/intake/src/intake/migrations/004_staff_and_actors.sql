-- Every signed-in staff member is in the staff list (their staff id is the token's staff_id):
-- the realm's demo staff for intake, the office leads and the network-wide roles. Network-wide
-- roles (coordinator, data protection officer, admin) work at no office: '' below, NULL stored.
ALTER TABLE staff ALTER COLUMN office_id DROP NOT NULL;
-- They counsel in no service line ('{}'), so counselling capacity counts only those who do.
INSERT INTO staff (staff_id, office_id, display_name, fte, service_lines)
SELECT staff_id, NULLIF(office_id, ''), display_name, fte, service_lines::text[]
FROM (VALUES
    ('intake-hamborn', 'rsc-hamborn', 'Anmeldung Hamborn', 1.0, '{}'),
    ('intake-hochfeld', 'rsc-hochfeld', 'Anmeldung Hochfeld', 1.0, '{}'),
    ('intake-rheinhausen', 'rsc-rheinhausen', 'Anmeldung Rheinhausen', 1.0, '{}'),
    ('lead-hamborn', 'rsc-hamborn', 'Leitung Hamborn', 1.0, '{}'),
    ('lead-hochfeld', 'rsc-hochfeld', 'Leitung Hochfeld', 1.0, '{}'),
    ('lead-rheinhausen', 'rsc-rheinhausen', 'Leitung Rheinhausen', 1.0, '{}'),
    ('coordinator', '', 'Koordination', 1.0, '{}'),
    ('dpo', '', 'Datenschutzbeauftragte Person', 1.0, '{}'),
    ('admin', '', 'Administration', 1.0, '{}')
) AS demo (staff_id, office_id, display_name, fte, service_lines)
ON CONFLICT (staff_id) DO NOTHING;

-- Who withdrew a consent (the signed-in staff member), next to who recorded it.
ALTER TABLE consents ADD COLUMN withdrawn_by text;
