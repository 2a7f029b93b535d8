#!/usr/bin/env python3
"""Cross-check Keyward's soft key against Yubico's python-fido2, an independent CTAP client.

Usage: ctap_crosscheck.py unix:PATH | tcp:HOST:PORT

The soft key serves CTAPHID as 64 raw bytes per report on a stream socket; this script wraps
that socket in a python-fido2 CtapHidConnection so the library's own CTAPHID, CBOR and PIN
protocol code drives the key. Every step prints one line; any disagreement raises (exit != 0).
PINs here are throw-away test values for a software key.
"""

import hashlib
import socket
import sys

from fido2.ctap import CtapError
from fido2.ctap2 import Config, Ctap2, CredentialManagement
from fido2.ctap2.pin import ClientPin, PinProtocolV2
from fido2.hid import CtapHidDevice
from fido2.hid.base import CtapHidConnection, HidDescriptor

REPORT = 64
RP = "login.microsoft.com"


class SocketConnection(CtapHidConnection):
    """One 64-byte report per read/write, no prefix, over a unix or tcp stream socket."""

    def __init__(self, address: str):
        if address.startswith("unix:"):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(address[len("unix:"):])
        elif address.startswith("tcp:"):
            host, port = address[len("tcp:"):].rsplit(":", 1)
            self.sock = socket.create_connection((host, int(port)))
        else:
            raise SystemExit(f"address {address!r} must be unix:PATH or tcp:HOST:PORT")
        self.sock.settimeout(30)

    def read_packet(self) -> bytes:
        buf = b""
        while len(buf) < REPORT:
            chunk = self.sock.recv(REPORT - len(buf))
            if not chunk:
                raise ConnectionError("soft key closed the connection")
            buf += chunk
        return buf

    def write_packet(self, data: bytes) -> None:
        if len(data) != REPORT:
            raise ValueError(f"report of {len(data)} bytes, expected {REPORT}")
        self.sock.sendall(data)

    def close(self) -> None:
        self.sock.close()


def step(msg: str) -> None:
    print(f"ok: {msg}", flush=True)


def check(cond: bool, msg: str) -> None:
    if not cond:
        raise AssertionError(msg)


def expect_error(code, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except CtapError as e:
        check(e.code == code, f"expected {code!r}, got {e.code!r}")
        return
    raise AssertionError(f"expected CTAP error {code!r}, call succeeded")


def main(address: str) -> None:
    descriptor = HidDescriptor(address, 0, 0, REPORT, REPORT, "keyward-softkey", None)
    dev = CtapHidDevice(descriptor, SocketConnection(address))
    ctap = Ctap2(dev)
    info = ctap.get_info()
    check("FIDO_2_1" in info.versions, f"versions {info.versions}")
    check(info.aaguid == b"keyward-softkey!", f"aaguid {info.aaguid!r}")
    check(2 in info.pin_uv_protocols, f"pin protocols {info.pin_uv_protocols}")
    check(info.options.get("clientPin") is False, f"clientPin {info.options}")
    check(info.options.get("rk") is True, f"rk {info.options}")
    for option in ("credMgmt", "authnrCfg", "setMinPINLength"):
        check(info.options.get(option) is True, f"{option} not advertised: {info.options}")
    step(f"getInfo versions={info.versions} minPINLength={info.min_pin_length}")

    pin = ClientPin(ctap, PinProtocolV2())
    pin.set_pin("1234")
    check(ctap.get_info().options.get("clientPin") is True, "clientPin not set after setPIN")
    check(pin.get_pin_retries()[0] == 8, "retries after setPIN")
    step("setPIN")

    expect_error(CtapError.ERR.PIN_INVALID, pin.change_pin, "9999", "56789")
    check(pin.get_pin_retries()[0] == 7, "retries after wrong PIN")
    pin.change_pin("1234", "56789")
    check(pin.get_pin_retries()[0] == 8, "retries after changePIN")
    step("changePIN (wrong PIN refused, retries counted and restored)")

    token = pin.get_pin_token("56789", ClientPin.PERMISSION.MAKE_CREDENTIAL, RP)
    cdh = hashlib.sha256(b'{"type":"webauthn.create"}').digest()
    att = ctap.make_credential(
        cdh,
        {"id": RP, "name": "Microsoft"},
        {"id": b"ada-user-id", "name": "ada@contoso.com", "displayName": "Ada"},
        [{"type": "public-key", "alg": -7}],
        options={"rk": True},
        pin_uv_param=pin.protocol.authenticate(token, cdh),
        pin_uv_protocol=pin.protocol.VERSION,
    )
    auth = att.auth_data
    check(auth.rp_id_hash == hashlib.sha256(RP.encode()).digest(), "rpIdHash")
    check(auth.is_user_present() and auth.is_user_verified(), f"flags {auth.flags:#x}")
    check(auth.credential_data is not None, "no attested credential data")
    cred_id = auth.credential_data.credential_id
    public_key = auth.credential_data.public_key
    step(f"makeCredential rk+uv fmt={att.fmt} credential id {len(cred_id)} bytes")

    expect_error(
        CtapError.ERR.PIN_AUTH_INVALID,
        ctap.make_credential,
        cdh,
        {"id": RP},
        {"id": b"x"},
        [{"type": "public-key", "alg": -7}],
        pin_uv_param=b"\0" * 32,
        pin_uv_protocol=pin.protocol.VERSION,
    )
    step("makeCredential with a bad pinUvAuthParam is refused")

    token = pin.get_pin_token("56789", ClientPin.PERMISSION.GET_ASSERTION, RP)
    gdh = hashlib.sha256(b'{"type":"webauthn.get"}').digest()
    a = ctap.get_assertion(
        RP,
        gdh,
        pin_uv_param=pin.protocol.authenticate(token, gdh),
        pin_uv_protocol=pin.protocol.VERSION,
    )
    check(a.credential["id"] == cred_id, "discovered credential id")
    check(a.user is not None and a.user["id"] == b"ada-user-id", f"user {a.user}")
    check(a.auth_data.is_user_verified(), "assertion without UV")
    a.verify(gdh, public_key)
    step("getAssertion (discoverable, UV, signature verified)")

    # A second credential for another RP, so enumeration has more than one of each.
    token = pin.get_pin_token("56789", ClientPin.PERMISSION.MAKE_CREDENTIAL, "example.org")
    ctap.make_credential(
        cdh,
        {"id": "example.org"},
        {"id": b"bob", "name": "bob@example.org"},
        [{"type": "public-key", "alg": -7}],
        options={"rk": True},
        pin_uv_param=pin.protocol.authenticate(token, cdh),
        pin_uv_protocol=pin.protocol.VERSION,
    )
    ctap.get_info()  # any other command ends an enumeration; a fresh token follows anyway

    token = pin.get_pin_token("56789", ClientPin.PERMISSION.CREDENTIAL_MGMT)
    cm = CredentialManagement(ctap, pin.protocol, token)
    meta = cm.get_metadata()
    check(meta[CredentialManagement.RESULT.EXISTING_CRED_COUNT] == 2, f"metadata {meta}")
    rps = cm.enumerate_rps()
    rp_ids = sorted(r[CredentialManagement.RESULT.RP]["id"] for r in rps)
    check(rp_ids == ["example.org", RP], f"rps {rp_ids}")
    creds = cm.enumerate_creds(hashlib.sha256(RP.encode()).digest())
    check(len(creds) == 1, f"creds {creds}")
    found = creds[0]
    check(found[CredentialManagement.RESULT.CREDENTIAL_ID]["id"] == cred_id, "enumerated id")
    check(found[CredentialManagement.RESULT.USER]["name"] == "ada@contoso.com", "enumerated user")
    check(found[CredentialManagement.RESULT.PUBLIC_KEY] == public_key, "enumerated public key")
    cm.update_user_info(
        {"id": cred_id, "type": "public-key"},
        {"id": b"ada-user-id", "name": "ada.lovelace@contoso.com", "displayName": "Ada L."},
    )
    user = cm.enumerate_creds(hashlib.sha256(RP.encode()).digest())[0][CredentialManagement.RESULT.USER]
    check(user["name"] == "ada.lovelace@contoso.com", f"updated user {user}")
    step("credentialManagement metadata, enumerate RPs/credentials, updateUserInformation")

    cm.delete_cred({"id": cred_id, "type": "public-key"})
    check(cm.get_metadata()[CredentialManagement.RESULT.EXISTING_CRED_COUNT] == 1, "count after delete")
    expect_error(CtapError.ERR.NO_CREDENTIALS, ctap.get_assertion, RP, gdh)
    step("credentialManagement deleteCredential")

    ga_only = pin.get_pin_token("56789", ClientPin.PERMISSION.GET_ASSERTION, RP)
    expect_error(CtapError.ERR.PIN_AUTH_INVALID, CredentialManagement(ctap, pin.protocol, ga_only).get_metadata)
    step("credentialManagement refuses a token without the cm permission")

    token = pin.get_pin_token("56789", ClientPin.PERMISSION.AUTHENTICATOR_CFG)
    cfg = Config(ctap, pin.protocol, token)
    cfg.set_min_pin_length(min_pin_length=6, rp_ids=[RP], force_change_pin=True)
    info = ctap.get_info()
    check(info.min_pin_length == 6 and info.force_pin_change, f"minPINLength {info.min_pin_length}")
    expect_error(CtapError.ERR.PIN_POLICY_VIOLATION, pin.get_pin_token, "56789")
    expect_error(CtapError.ERR.PIN_POLICY_VIOLATION, pin.change_pin, "56789", "12345")
    pin.change_pin("56789", "135790")
    check(not ctap.get_info().force_pin_change, "forcePINChange survived changePIN")
    token = pin.get_pin_token("135790", ClientPin.PERMISSION.AUTHENTICATOR_CFG)
    cfg = Config(ctap, pin.protocol, token)
    expect_error(CtapError.ERR.PIN_POLICY_VIOLATION, cfg.set_min_pin_length, min_pin_length=4)
    cfg.toggle_always_uv()
    check(ctap.get_info().options.get("alwaysUv") is True, "alwaysUv not toggled")
    step("authenticatorConfig setMinPINLength+forceChangePin, toggleAlwaysUv")

    ctap.reset()
    info = ctap.get_info()
    check(info.options.get("clientPin") is False, "PIN survived reset")
    expect_error(CtapError.ERR.NO_CREDENTIALS, ctap.get_assertion, RP, gdh)
    step("reset (PIN and credentials gone)")
    print("crosscheck passed", flush=True)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(sys.argv[1])
