"""Obtain a token from `keyward sim` with MSAL Python, an OAuth client library independent of
Keyward, using a certificate client assertion — which MSAL writes with fractional `exp`, `nbf`
and `iat` (msal/oauth2cli/assertion.py: `now = time.time()`; RFC 7519 NumericDate allows it).

The claims MSAL signs are recorded (by wrapping PyJWT's `jwt.encode`, which MSAL calls) so the
caller can check the assertion really carried fractional times, not only that a token came back.

Usage: msal_certificate_token.py INPUT.json

INPUT.json holds:
  authority    https://127.0.0.1:PORT/TENANT (the emulator, started with TLS)
  clientId     the app's client id
  privateKey   PEM of the certificate's RSA key
  certificate  PEM of the certificate registered on the app
  caBundle     path of the emulator's TLS certificate (PEM)

Prints one JSON line: {"ok": bool, "error": str|null, "error_codes": [...], "claims": {...},
"header": {...}} and exits 0; exits 2 on bad input or setup.
"""

import json
import sys

try:
    import jwt
    import msal
    import requests
except ImportError as e:  # the venv is missing or incomplete
    print(f"setup: {e}; install python/requirements.txt into the venv", file=sys.stderr)
    sys.exit(2)


class TrustingClient:
    """The HTTP client MSAL is given: requests with the emulator's certificate trusted on every
    call. (MSAL's own `verify=` sets `Session.verify`, which this version of requests does not
    apply to the TLS handshake: the self-signed certificate is then refused.)"""

    def __init__(self, ca_bundle):
        self.session = requests.Session()
        self.ca_bundle = ca_bundle

    def get(self, url, **kwargs):
        return self.session.get(url, verify=self.ca_bundle, timeout=30, **kwargs)

    def post(self, url, **kwargs):
        return self.session.post(url, verify=self.ca_bundle, timeout=30, **kwargs)

    def close(self):
        self.session.close()


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1], encoding="utf-8") as f:
        spec = json.load(f)

    signed = {}
    real_encode = jwt.encode

    def recording_encode(payload, key, algorithm=None, headers=None, **kwargs):
        signed["claims"] = dict(payload)
        signed["header"] = dict(headers or {}, alg=algorithm)
        return real_encode(payload, key, algorithm=algorithm, headers=headers, **kwargs)

    jwt.encode = recording_encode
    app = msal.ConfidentialClientApplication(
        spec["clientId"],
        authority=spec["authority"],
        client_credential={"private_key": spec["privateKey"], "public_certificate": spec["certificate"]},
        http_client=TrustingClient(spec["caBundle"]),
        instance_discovery=False,
        validate_authority=False,
    )
    result = app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
    print(json.dumps({
        "ok": "access_token" in result,
        "error": result.get("error_description"),
        "error_codes": result.get("error_codes", []),
        "claims": {k: v for k, v in signed.get("claims", {}).items() if k in ("exp", "nbf", "iat", "aud", "iss")},
        "header": {k: v for k, v in signed.get("header", {}).items() if k in ("alg", "x5t", "x5t#S256")},
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
