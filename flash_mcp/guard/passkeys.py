"""The human's passkey (WebAuthn, user verification required): enrolment and the assertion an approval takes.

py_webauthn does the protocol (CBOR, COSE, signatures); this module keeps the public keys, one-time enrolment
tokens and one-time challenges in the guard's database. An approval's challenge is bound to the proposal:
sha256("approve" | proposal id | body digest | a fresh nonce), so an assertion cannot be replayed for another
proposal or an altered body, and each is used once. The origin is checked exactly (scheme, host and port).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from pathlib import Path
from typing import Any

import webauthn
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import InvalidAuthenticationResponse, InvalidRegistrationResponse
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from flash_mcp.core.sqlite import Database

RP_ID = "localhost"
TOKEN_TTL_S, CHALLENGE_TTL_S = 15 * 60, 5 * 60
_SCHEMA = """
CREATE TABLE IF NOT EXISTS passkeys (
    credential_id TEXT PRIMARY KEY, public_key BLOB NOT NULL, sign_count INTEGER NOT NULL, created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS challenges (
    purpose TEXT PRIMARY KEY, challenge BLOB NOT NULL, expires_at REAL NOT NULL
);
"""


class PasskeyError(Exception):
    """An enrolment or assertion the guard refuses; the message says why."""


class Passkeys(Database):
    def __init__(self, home: Path, origin: str):
        super().__init__(home / "guard.db", _SCHEMA)
        self.origin = origin

    def registered(self) -> bool:
        with self.connect() as db:
            return db.execute("SELECT COUNT(*) FROM passkeys").fetchone()[0] > 0

    # -- enrolment ---------------------------------------------------------------------------

    def enrolment_token(self) -> str:
        """A one-time token for the enrolment page (a decider asks for it: the human, through sudo)."""
        token = secrets.token_urlsafe(24)
        self._put(f"enrol:{_digest(token)}", b"", TOKEN_TTL_S)
        return token

    def registration_options(self, token: str) -> str:
        self._require(f"enrol:{_digest(token)}", consume=False)
        options = webauthn.generate_registration_options(
            rp_id=RP_ID, rp_name="flash-mcp spend guard", user_name="human", user_id=b"flash-mcp-human",
            authenticator_selection=AuthenticatorSelectionCriteria(
                user_verification=UserVerificationRequirement.REQUIRED, resident_key=ResidentKeyRequirement.PREFERRED
            ),
        )  # fmt: skip
        self._put(f"register:{_digest(token)}", options.challenge, CHALLENGE_TTL_S)
        return webauthn.options_to_json(options)

    def register(self, token: str, credential: dict[str, Any]) -> None:
        self._require(f"enrol:{_digest(token)}", consume=True)
        challenge = self._require(f"register:{_digest(token)}", consume=True)
        try:
            verified = webauthn.verify_registration_response(
                credential=credential, expected_challenge=challenge, expected_rp_id=RP_ID,
                expected_origin=self.origin, require_user_verification=True,
            )  # fmt: skip
        except InvalidRegistrationResponse as exc:
            raise PasskeyError(f"the passkey was not registered: {exc}") from None
        self.write("INSERT OR REPLACE INTO passkeys VALUES (?, ?, ?, ?)",
                   (bytes_to_base64url(verified.credential_id), verified.credential_public_key,
                    verified.sign_count, time.time()))  # fmt: skip

    # -- approvals ---------------------------------------------------------------------------

    def approval_options(self, item_id: str, digest: str, kind: str = "approve") -> str:
        """Options for an assertion on `kind` (approve a proposal, confirm a change) of this item and digest."""
        nonce = secrets.token_bytes(32)
        challenge = hashlib.sha256(f"{kind}|{item_id}|{digest}|".encode() + nonce).digest()
        self._put(f"{kind}:{item_id}:{digest}", challenge, CHALLENGE_TTL_S)
        with self.connect() as db:
            ids = [row[0] for row in db.execute("SELECT credential_id FROM passkeys")]
        options = webauthn.generate_authentication_options(
            rp_id=RP_ID, challenge=challenge, user_verification=UserVerificationRequirement.REQUIRED,
            allow_credentials=[PublicKeyCredentialDescriptor(id=base64url_to_bytes(i)) for i in ids],
        )  # fmt: skip
        return webauthn.options_to_json(options)

    def verify_approval(self, item_id: str, digest: str, credential: dict[str, Any], kind: str = "approve") -> None:
        """The assertion answers this item's own challenge, from this origin, with user verification."""
        challenge = self._require(f"{kind}:{item_id}:{digest}", consume=True)
        stored = self._credential(str(credential.get("id") or ""))
        try:
            verified = webauthn.verify_authentication_response(
                credential=credential, expected_challenge=challenge, expected_rp_id=RP_ID,
                expected_origin=self.origin, credential_public_key=stored["public_key"],
                credential_current_sign_count=stored["sign_count"], require_user_verification=True,
            )  # fmt: skip
        except InvalidAuthenticationResponse as exc:
            raise PasskeyError(f"the passkey's answer was refused: {exc}") from None
        self.write("UPDATE passkeys SET sign_count = ? WHERE credential_id = ?",
                   (verified.new_sign_count, stored["credential_id"]))  # fmt: skip

    def _credential(self, credential_id: str) -> dict[str, Any]:
        with self.connect() as db:
            row = db.execute("SELECT * FROM passkeys WHERE credential_id = ?", (credential_id,)).fetchone()
        if row is None:
            raise PasskeyError("that passkey is not registered with this guard")
        return dict(row)

    def _put(self, purpose: str, challenge: bytes, ttl: float) -> None:
        self.write("INSERT OR REPLACE INTO challenges VALUES (?, ?, ?)", (purpose, challenge, time.time() + ttl))

    def _require(self, purpose: str, *, consume: bool) -> bytes:
        with self.writing() as db:
            row = db.execute("SELECT challenge, expires_at FROM challenges WHERE purpose = ?", (purpose,)).fetchone()
            if row is not None and consume:
                db.execute("DELETE FROM challenges WHERE purpose = ?", (purpose,))
        if row is None or row["expires_at"] < time.time():
            raise PasskeyError("this link or challenge is unknown, used or expired; start again")
        return bytes(row["challenge"])


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_credential(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        raise PasskeyError("the passkey's answer is not JSON") from None
    if not isinstance(value, dict):
        raise PasskeyError("the passkey's answer is not a JSON object")
    return value
