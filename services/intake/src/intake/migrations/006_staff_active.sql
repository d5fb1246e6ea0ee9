-- Staff who leave are deactivated, never deleted: audit entries, consents and case histories
-- name their staff id, and the id must keep meaning someone. Offices list only active staff.
ALTER TABLE staff ADD COLUMN active boolean NOT NULL DEFAULT true;
