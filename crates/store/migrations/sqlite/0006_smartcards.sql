-- Smart cards and virtual smart cards bound to requests (POST /smartcards). A card id may be live
-- on one card at a time; a retired card's id can be bound again (when its template allows reuse)
-- as a new card.
CREATE TABLE smartcards (
    uuid TEXT PRIMARY KEY,
    status INTEGER NOT NULL,
    flags INTEGER NOT NULL,
    card_id TEXT NOT NULL,
    atr TEXT NOT NULL,
    middleware TEXT NOT NULL,
    assigned_user_uuid TEXT NOT NULL,
    template_uuid TEXT NOT NULL,
    template_version BIGINT NOT NULL,
    request_uuid TEXT NOT NULL,
    comment TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    version BIGINT NOT NULL
);
CREATE UNIQUE INDEX smartcards_live_card_id ON smartcards (card_id) WHERE status <> 6;
CREATE INDEX smartcards_by_card_id ON smartcards (card_id, created_at);
CREATE INDEX smartcards_by_user ON smartcards (assigned_user_uuid, uuid);
