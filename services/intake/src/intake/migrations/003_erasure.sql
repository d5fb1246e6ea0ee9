-- Erasure on request: the row stays (its id is referenced by consents and by other services'
-- anonymous facts) but every personal field is emptied.
ALTER TABLE clients ADD COLUMN erased_at timestamptz;
