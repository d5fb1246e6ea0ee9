-- Transactional outbox: events are written here in the same transaction as the state change;
-- the relay publishes them and marks them published.
CREATE TABLE outbox (
    id           bigserial PRIMARY KEY,
    event_id     uuid NOT NULL,
    topic        text NOT NULL,
    message_key  text NOT NULL,
    event_type   text NOT NULL,
    headers      jsonb NOT NULL,
    body         bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    -- The same event may go to two topics (a referral: lifecycle and the agency's own topic).
    UNIQUE (event_id, topic)
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;

-- Idempotent consumers: the event id is recorded in the same transaction as its effect.
CREATE TABLE processed_events (
    consumer     text NOT NULL,
    event_id     uuid NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

-- Idempotent HTTP POSTs: the first answer to an Idempotency-Key is stored and repeated.
CREATE TABLE idempotency_keys (
    idempotency_key text NOT NULL,
    scope           text NOT NULL,
    request_hash    text NOT NULL,
    status_code     integer,
    response_body   jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, idempotency_key)
);
