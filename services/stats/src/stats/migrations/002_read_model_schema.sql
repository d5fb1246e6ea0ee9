-- The read models moved into their own schema (created and rebuilt by stats.readmodel from
-- readmodel.sql, not by migrations), so a rebuild can fill fresh tables and swap them in.
-- The first tables of the walking skeleton are dropped; their content is rebuilt from the log.
DROP TABLE IF EXISTS persons;
DROP TABLE IF EXISTS cases;
DROP TABLE IF EXISTS consultations;
DROP TABLE IF EXISTS referrals;

-- Staff positions, for "caseload per full-time post". No event carries them (yet); they are
-- loaded from a seed file at startup (KP_STAFF_SEED_PATH). Not derived from the log, so not
-- part of the rebuilt read model.
CREATE TABLE staff (
    case_manager_id text PRIMARY KEY,
    office_id       text NOT NULL,
    service_line    text NOT NULL,
    fte             numeric(4, 2) NOT NULL CHECK (fte > 0 AND fte <= 1.5)
);
