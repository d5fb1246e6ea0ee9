-- Where each event consumer stands, per partition, written in the same transaction as the
-- effects of the events below `next_offset` (knotenpunkt.consumer). Kafka's committed offsets
-- are only a mirror for lag monitoring; after a rebalance the consumer seeks to these.
CREATE TABLE consumer_offsets (
    consumer    text NOT NULL,
    topic       text NOT NULL,
    partition   integer NOT NULL,
    next_offset bigint NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, topic, partition)
);
