"""Verify a Keyward registration with Duo's py_webauthn, an implementation independent of ours.

Keyward builds the clientDataJSON, drives the security key and assembles the Graph body
itself; the emulator that accepts it is ours too. This script checks the same registration
with `webauthn.verify_registration_response`, as a relying party other than ours would.

Usage: verify_registration.py INPUT.json

INPUT.json holds:
  body               the Graph POST body Keyward sent (displayName, publicKeyCredential)
  expectedChallenge  the creation options' challenge (base64url)
  expectedOrigin     e.g. https://login.microsoft.com
  expectedRpId       e.g. login.microsoft.com
  rootsPem           optional list of PEM attestation roots for `packed` chains

Exit status: 0 verified (prints `aaguid`, `credential_id`, `fmt`, `user_verified` lines, then
`verified`), 1 rejected by py_webauthn (prints `rejected: <reason>`), 2 bad input or setup.
"""

import json
import sys
import traceback

try:
    from webauthn import verify_registration_response
    from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
    from webauthn.helpers.exceptions import InvalidRegistrationResponse
    from webauthn.helpers.cose import COSEAlgorithmIdentifier
    from webauthn.helpers.structs import AttestationFormat
except ImportError as e:  # the venv is missing or incomplete
    print(f"py_webauthn is not installed ({e}); run `.venv/bin/pip install -r python/requirements.txt`")
    sys.exit(2)


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    with open(sys.argv[1], encoding="utf-8") as f:
        data = json.load(f)

    credential = data["body"]["publicKeyCredential"]
    # Graph's body omits rawId and type (Graph rejects them); a WebAuthn verifier needs them.
    registration = {
        "id": credential["id"],
        "rawId": credential["id"],
        "type": "public-key",
        "response": {
            "clientDataJSON": credential["response"]["clientDataJSON"],
            "attestationObject": credential["response"]["attestationObject"],
        },
        "clientExtensionResults": credential.get("clientExtensionResults") or {},
    }
    roots = [pem.encode("ascii") for pem in data.get("rootsPem", [])]
    try:
        verified = verify_registration_response(
            credential=registration,
            expected_challenge=base64url_to_bytes(data["expectedChallenge"]),
            expected_origin=data["expectedOrigin"],
            expected_rp_id=data["expectedRpId"],
            require_user_verification=True,
            # Entra offers exactly these two (docs/entra-graph-api.md §11.1); py_webauthn would also
            # take EdDSA.
            supported_pub_key_algs=[
                COSEAlgorithmIdentifier.ECDSA_SHA_256,
                COSEAlgorithmIdentifier.RSASSA_PKCS1_v1_5_SHA_256,
            ],
            pem_root_certs_bytes_by_fmt={AttestationFormat.PACKED: roots} if roots else None,
        )
    except InvalidRegistrationResponse as e:
        print(f"rejected: {e}")
        return 1

    print(f"aaguid {verified.aaguid}")
    print(f"credential_id {bytes_to_base64url(verified.credential_id)}")
    print(f"fmt {AttestationFormat(verified.fmt).value}")
    print(f"user_verified {str(verified.user_verified).lower()}")
    print("verified")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception:  # anything but a verdict is a broken setup, not a rejection
        traceback.print_exc()
        sys.exit(2)
