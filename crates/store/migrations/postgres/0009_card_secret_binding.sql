-- A card's secrets (diversified admin key, PUK) belong to its binding, not to its card id: the
-- GUID they are diversified from. Cards bound from now on use their own record's uuid, so the next
-- holder of a reused card gets secrets the previous holder never saw; cards bound before keep
-- their card id here, so their secrets stay the ones they were personalised with.
ALTER TABLE smartcards ADD COLUMN key_diversifier TEXT NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000';
UPDATE smartcards SET key_diversifier = card_id;
