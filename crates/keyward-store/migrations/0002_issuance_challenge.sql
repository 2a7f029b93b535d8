-- The challenge handed to the client with the creation options, checked when the registration comes back.
ALTER TABLE issuance ADD COLUMN challenge TEXT;
