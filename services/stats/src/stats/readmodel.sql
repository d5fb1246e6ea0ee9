-- The stats read models: anonymous facts keyed by ids. No names, no birth dates, no notes.
-- Executed inside a fresh schema (search_path set by stats.readmodel); rebuildable from the log,
-- hence UNLOGGED (no write-ahead log; emptied after a crash, then refilled from offset 0).
-- Every event fills only its own columns, so events may arrive in any order; re-applying an
-- event sets the same values again, so a duplicate changes nothing.

CREATE UNLOGGED TABLE persons (
    client_id            uuid PRIMARY KEY,
    -- Midnight UTC of the registration's day, never the exact time (data minimisation).
    registered_at        timestamptz,
    service_line         text,
    service_lines        text[],
    office_id            text,
    age_band             text,
    gender               text,
    district             text,
    nationalities        text[],
    languages            text[],
    counselling_language text,
    residence_status     text,
    arrival_year         integer,
    household_size       integer,
    access_route         text,
    -- When the correctable attributes were last set (registration or a later correction).
    attributes_as_of     timestamptz
);

-- Merged duplicates: the retired id points at the surviving one (chains resolved on write).
CREATE UNLOGGED TABLE client_aliases (
    merged_client_id uuid PRIMARY KEY,
    client_id        uuid NOT NULL,
    merged_at        timestamptz NOT NULL
);

CREATE UNLOGGED TABLE cases (
    case_id             uuid PRIMARY KEY,
    client_id           uuid NOT NULL,
    service_line        text,
    office_id           text,
    office_as_of        timestamptz,
    case_manager_id     text,
    manager_as_of       timestamptz,
    opened_at           timestamptz,
    closed_at           timestamptz,
    close_reason        text,
    reopened_at         timestamptz,
    -- Closed now: closed, and not reopened after the (last) closing.
    effective_closed_at timestamptz GENERATED ALWAYS AS (
        CASE WHEN closed_at IS NOT NULL AND (reopened_at IS NULL OR reopened_at < closed_at) THEN closed_at END
    ) STORED
);

CREATE UNLOGGED TABLE consultations (
    consultation_id           uuid PRIMARY KEY,
    case_id                   uuid NOT NULL,
    client_id                 uuid NOT NULL,
    service_line              text NOT NULL,
    office_id                 text NOT NULL,
    held_on                   date NOT NULL,
    duration_minutes          integer NOT NULL,
    topics                    text[] NOT NULL,
    family_members_counselled integer NOT NULL,
    mode                      text NOT NULL,
    language                  text,
    interpreter_used          boolean NOT NULL,
    case_manager_id           text
);

CREATE UNLOGGED TABLE plan_goals (
    goal_id     uuid PRIMARY KEY,
    case_id     uuid NOT NULL,
    client_id   uuid NOT NULL,
    topic_code  text,
    set_at      timestamptz,
    status      text,
    status_at   timestamptz
);

CREATE UNLOGGED TABLE referrals (
    referral_id    uuid PRIMARY KEY,
    client_id      uuid NOT NULL,
    case_id        uuid,
    agency_id      text NOT NULL,
    topic_code     text,
    office_id      text,
    sent_at        timestamptz,
    answer_due_on  date,
    accepted_at    timestamptz,
    declined_at    timestamptz,
    decline_reason text,
    completed_at   timestamptz,
    outcome        text,
    withdrawn_at   timestamptz,
    withdraw_reason text,
    expired_at     timestamptz
);

-- Steps (accepted, declined, completed, withdrawn, expired) of referrals not (yet) seen as sent.
-- Only a ReferralSent makes a referral count; a step for an unknown id waits here and is moved
-- into `referrals` when its ReferralSent arrives (after a merge the two may come from different
-- partitions, and a batch applies its event types in turn). A forged answer for a referral that
-- was never sent stays here and is never counted. One row per referral and step: the latest.
CREATE UNLOGGED TABLE referral_steps_waiting (
    referral_id uuid NOT NULL,
    step        text NOT NULL,
    client_id   uuid NOT NULL,
    agency_id   text NOT NULL,
    at          timestamptz NOT NULL,
    detail      text,
    PRIMARY KEY (referral_id, step)
);

-- The gap register: needs nobody could meet.
CREATE UNLOGGED TABLE unmet_needs (
    referral_id uuid NOT NULL,
    cause       text NOT NULL,
    client_id   uuid NOT NULL,
    topic_code  text NOT NULL,
    agency_kind text NOT NULL,
    office_id   text NOT NULL,
    recorded_at timestamptz NOT NULL,
    PRIMARY KEY (referral_id, cause)
);

-- JMD -> MBE handovers due (a young person turned 27).
CREATE UNLOGGED TABLE handovers (
    client_id         uuid NOT NULL,
    -- The first day of the month it is due in: the exact day would be the 27th birthday.
    due_on            date NOT NULL,
    from_service_line text NOT NULL,
    to_service_line   text NOT NULL,
    PRIMARY KEY (client_id, due_on)
);

-- Merges in log order, in one round trip per batch (they are rare, but one statement each was
-- the slowest part of a batch). Chains resolve on write in either order of arrival: A->B then
-- B->C gives A->C and B->C; B->C then A->B gives the same. A merge that would make a cycle is
-- ignored (both ids would vanish).
CREATE FUNCTION merge_clients(merged uuid[], survivors uuid[], merged_at timestamptz[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    i integer;
    target uuid;
BEGIN
    FOR i IN 1 .. coalesce(array_length(merged, 1), 0) LOOP
        target := coalesce((SELECT a.client_id FROM client_aliases a WHERE a.merged_client_id = survivors[i]), survivors[i]);
        CONTINUE WHEN target = merged[i];
        INSERT INTO client_aliases AS a (merged_client_id, client_id, merged_at)
        VALUES (merged[i], target, merged_at[i])
        ON CONFLICT (merged_client_id) DO UPDATE SET client_id = EXCLUDED.client_id, merged_at = EXCLUDED.merged_at;
        UPDATE client_aliases SET client_id = target WHERE client_id = merged[i];
    END LOOP;
END
$$;
