-- Retired client ids (ClientsMerged): agencies may still quote them in answers to referrals
-- sent before the merge.
CREATE TABLE merged_clients (
    merged_client_id uuid PRIMARY KEY,
    client_id        uuid NOT NULL
);
