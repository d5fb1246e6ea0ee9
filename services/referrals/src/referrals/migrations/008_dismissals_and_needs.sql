-- Issue 10 (the web app): a declined or expired referral the case manager has dealt with leaves
-- the action-needed list (dismissed, by whom and when); and an unmet need can be recorded without
-- a referral (no partner in the directory offers the topic, or all are known to be full).
ALTER TABLE referrals
    ADD COLUMN dismissed_at timestamptz,
    ADD COLUMN dismissed_by text;

-- A need recorded without a referral has its own id; one from a referral keeps the referral's id
-- as its own, so the register's existing entries and stats' copies keep their keys.
ALTER TABLE unmet_needs ADD COLUMN need_id uuid;
UPDATE unmet_needs SET need_id = referral_id;
ALTER TABLE unmet_needs
    ALTER COLUMN need_id SET NOT NULL,
    DROP CONSTRAINT unmet_needs_pkey,
    ADD PRIMARY KEY (need_id),
    ALTER COLUMN referral_id DROP NOT NULL,
    ADD CONSTRAINT unmet_needs_one_per_referral UNIQUE (referral_id),
    ALTER COLUMN agency_id DROP NOT NULL,
    ADD COLUMN case_id uuid,
    ADD COLUMN recorded_by text,
    DROP CONSTRAINT unmet_needs_cause_check,
    ADD CONSTRAINT unmet_needs_cause_check CHECK (cause IN ('no_capacity', 'expired', 'no_agency'));
