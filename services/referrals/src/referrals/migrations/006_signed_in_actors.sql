-- Issue 9: the web inbox signs agencies in through Keycloak (agency staff and the agency's own
-- machine client); the self-made inbox tokens are gone.
DROP TABLE IF EXISTS agency_tokens;

-- Who acted, from the token (a pseudonymous staff id or an agency's sign-in), never from a body;
-- and which data categories each agency received, for the person's own data export (Art. 15).
-- Only the categories: the values went on the agency's topic and are not kept here.
ALTER TABLE referrals
    ADD COLUMN sent_by           text,
    ADD COLUMN answered_by       text,
    ADD COLUMN completed_by      text,
    ADD COLUMN closed_by         text,
    ADD COLUMN shared_categories text[];

CREATE INDEX referrals_by_client ON referrals (client_id);
