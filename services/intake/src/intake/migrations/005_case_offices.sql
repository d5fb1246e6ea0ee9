-- A person's record belongs to the office of registration and to every office running a case
-- of theirs (knotenpunkt.policy.Record.also_offices): after a transfer the new office's staff
-- may work with the person (consents, the case overview, referrals). Kept from the cases topic.
ALTER TABLE clients ADD COLUMN case_offices text[] NOT NULL DEFAULT '{}';
CREATE INDEX clients_case_offices ON clients USING gin (case_offices);
