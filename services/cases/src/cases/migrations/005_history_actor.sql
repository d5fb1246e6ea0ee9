-- Who did it: the staff id from the acting person's token for every change made over the API
-- (pseudonymous: a staff id is not a person's data). NULL where the entry follows from another
-- service's event (a registration, a merge, a referral's answer).
ALTER TABLE case_history ADD COLUMN acted_by text;
