-- Trust: issuances bound to an account, one person per account, tokens that expire.

-- Issuances are bound to the Entra account they were created for (object id and UPN), so a
-- relink after approval cannot send the passkey elsewhere; rows from before stay NULL and are
-- refused at their next step ("create a new issuance").
ALTER TABLE issuance ADD COLUMN entra_object_id TEXT;
ALTER TABLE issuance ADD COLUMN entra_upn TEXT;

-- Each external-reference slot names at most one person: two people on one Entra account would
-- let an issuance for one land on the other's account. (NULLs do not collide on either engine.)
DROP INDEX person_ext_ref_1;
DROP INDEX person_ext_ref_2;
DROP INDEX person_ext_ref_3;
CREATE UNIQUE INDEX person_ext_ref_1 ON person (ext_ref_1);
CREATE UNIQUE INDEX person_ext_ref_2 ON person (ext_ref_2);
CREATE UNIQUE INDEX person_ext_ref_3 ON person (ext_ref_3);

-- API tokens expire (NULL: tokens made before expiry existed, which never do until revoked).
ALTER TABLE api_token ADD COLUMN expires_at BIGINT;
