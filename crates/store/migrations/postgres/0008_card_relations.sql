-- Cards made from other cards: a renewal's new card names the card it replaces (parent), a
-- duplicate the card it copies (primary), a temporary card its user's permanent card, and a
-- temporary card expires (microseconds since the epoch; NULL for permanent cards). The nil GUID
-- means none, as on the wire.
ALTER TABLE smartcards ADD COLUMN parent_uuid TEXT NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000';
ALTER TABLE smartcards ADD COLUMN primary_uuid TEXT NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000';
ALTER TABLE smartcards ADD COLUMN permanent_uuid TEXT NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000';
ALTER TABLE smartcards ADD COLUMN expires_at BIGINT;
