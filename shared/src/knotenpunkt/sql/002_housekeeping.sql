-- Housekeeping (docs/decisions/0011-housekeeping.md): published outbox rows, processed events and
-- idempotency keys are pruned after a configurable time (knotenpunkt.housekeeping), and an
-- outbox row that carries personal data loses its body as soon as it is published.

-- Set by add_to_outbox: rows for an agency's own topic carry the consented personal data.
ALTER TABLE outbox ADD COLUMN personal_data boolean NOT NULL DEFAULT false;
-- A published personal-data row keeps only its metadata (which event went where, when); an
-- unpublished row always has its body, or the relay could not send it.
ALTER TABLE outbox ALTER COLUMN body DROP NOT NULL;
ALTER TABLE outbox ADD CONSTRAINT outbox_body_until_published CHECK (body IS NOT NULL OR published_at IS NOT NULL);

-- Rows written before this migration: the same rule, and the bodies already published go now.
UPDATE outbox SET personal_data = true WHERE topic LIKE 'knotenpunkt.agency.%';
UPDATE outbox SET body = NULL WHERE personal_data AND published_at IS NOT NULL;

-- Processed events are pruned by their age from now on. The ids recorded so far count from
-- today: a consumer without stored positions (its first start with consumer_offsets, decision
-- 0010) reads its topics from offset 0 again, and every id it has applied must still be here.
UPDATE processed_events SET processed_at = now();

-- The pruning deletes the oldest rows in small batches; without these indexes every batch would
-- scan the whole table.
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;
CREATE INDEX processed_events_processed_at ON processed_events (processed_at);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
