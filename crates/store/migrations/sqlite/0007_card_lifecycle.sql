-- The card lifecycle: the card a profile lives on (the nil GUID for software profiles, which the
-- partial index leaves out), the master admin-key version a card was personalised under, the
-- master secrets themselves (sealed under the KEK; a new version is added to rotate, and old
-- cards keep answering to theirs), and PINs the server proposed and must keep (sealed).
ALTER TABLE profiles ADD COLUMN smartcard_uuid TEXT NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000';
CREATE INDEX profiles_by_smartcard ON profiles (smartcard_uuid, uuid)
    WHERE smartcard_uuid <> '00000000-0000-0000-0000-000000000000';
ALTER TABLE smartcards ADD COLUMN key_version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE smartcards ADD COLUMN sealed_pin TEXT;
CREATE TABLE card_master_keys (
    version BIGINT PRIMARY KEY,
    sealed TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
