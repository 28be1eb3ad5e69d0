"""The signatures and ciphers of inbound callbacks, one function per platform rule.

Every check compares in constant time and raises ``Refused`` (HTTP 401) when a
request is not what the platform would have sent. AES comes from the
``cryptography`` package; nothing here is hand-rolled beyond the framing each
platform documents (see PLATFORMS.md "Inbound").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct


class Refused(Exception):
    """The request is refused with ``status`` (401: not verified, 400: malformed)."""

    def __init__(self, reason: str, status: int = 401):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def equal(a: str | bytes, b: str | bytes) -> bool:
    """Constant-time comparison of two strings or byte strings."""
    a = a.encode() if isinstance(a, str) else a
    b = b.encode() if isinstance(b, str) else b
    return hmac.compare_digest(a, b)


def _aes_cbc_decrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    # start-up time: loaded when first used
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    if not data or len(data) % 16:
        raise Refused("the encrypted body is not a whole number of AES blocks")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return decryptor.update(data) + decryptor.finalize()


def _unpad(data: bytes, block: int) -> bytes:
    """PKCS#7 padding to ``block`` bytes (WeCom pads to 32, not to AES's 16)."""
    pad = data[-1] if data else 0
    if not 1 <= pad <= block or data[-pad:] != bytes([pad]) * pad:
        raise Refused("bad padding after decryption (wrong key?)")
    return data[:-pad]


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise Refused("the encrypted field is not base64", 400) from None


# -- DingTalk app robot ----------------------------------------------------------------

def dingtalk_sign(app_secret: str, timestamp_ms: str) -> str:
    """base64(HMAC-SHA256(key=app_secret, msg=timestamp + "\\n" + app_secret))."""
    mac = hmac.new(app_secret.encode(), f"{timestamp_ms}\n{app_secret}".encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def check_dingtalk(app_secret: str, timestamp_ms: str, sign: str, now_s: float,
                   window_s: float = 3600.0) -> None:
    if not timestamp_ms.isdigit():
        raise Refused("missing or bad timestamp header")
    if abs(int(timestamp_ms) / 1000 - now_s) > window_s:
        raise Refused("timestamp too far from now")
    if not equal(dingtalk_sign(app_secret, timestamp_ms), sign):
        raise Refused("bad sign")


# -- Feishu / Lark ---------------------------------------------------------------------

def feishu_decrypt(encrypt_key: str, encrypt: str) -> str:
    """``encrypt`` = base64(iv16 ‖ AES-256-CBC(PKCS7)), key = SHA-256(encrypt_key)."""
    raw = _b64(encrypt)
    if len(raw) < 32:
        raise Refused("the encrypted body is too short", 400)
    key = hashlib.sha256(encrypt_key.encode()).digest()
    plain = _unpad(_aes_cbc_decrypt(key, raw[:16], raw[16:]), 16)
    try:
        return plain.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused("decrypted body is not UTF-8 (wrong key?)") from None


def feishu_signature(timestamp: str, nonce: str, encrypt_key: str, body: bytes) -> str:
    """hex SHA-256 of timestamp + nonce + encrypt_key + raw body (plain SHA-256, not HMAC)."""
    return hashlib.sha256((timestamp + nonce + encrypt_key).encode() + body).hexdigest()


def check_feishu(encrypt_key: str, timestamp: str, nonce: str, signature: str, body: bytes) -> None:
    if not timestamp or not signature:
        raise Refused("missing X-Lark-Signature")
    if not equal(feishu_signature(timestamp, nonce, encrypt_key, body), signature):
        raise Refused("bad X-Lark-Signature")


# -- WeCom intelligent robot -----------------------------------------------------------

def wecom_signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    """hex SHA-1 of the sorted concatenation of token, timestamp, nonce and the encrypted field."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypted])).encode()).hexdigest()  # noqa: S324 - the platform's algorithm


def check_wecom(token: str, timestamp: str, nonce: str, encrypted: str, signature: str) -> None:
    if not signature or not timestamp:
        raise Refused("missing msg_signature")
    if not equal(wecom_signature(token, timestamp, nonce, encrypted), signature):
        raise Refused("bad msg_signature")


def wecom_decrypt(encoding_aes_key: str, encrypted: str, receive_id: str = "") -> str:
    """random(16) ‖ len(msg) (4 bytes, big-endian) ‖ msg ‖ receiveid, padded to 32 bytes.

    ``receive_id`` (the corp id of a self-built app; empty for the intelligent
    robot) must match the one in the plaintext when it is configured.
    """
    key = base64.b64decode(encoding_aes_key + "=")
    plain = _unpad(_aes_cbc_decrypt(key, key[:16], _b64(encrypted)), 32)
    if len(plain) < 20:
        raise Refused("decrypted message too short")
    (length,) = struct.unpack(">I", plain[16:20])
    if 20 + length > len(plain):
        raise Refused("decrypted length out of range (wrong key?)")
    message, rest = plain[20:20 + length], plain[20 + length:]
    if receive_id and not equal(rest, receive_id.encode()):
        raise Refused("receive id does not match")
    try:
        return message.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused("decrypted message is not UTF-8 (wrong key?)") from None


# -- Slack -----------------------------------------------------------------------------

def slack_signature(signing_secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(signing_secret.encode(), b"v0:" + timestamp.encode() + b":" + body,
                   hashlib.sha256)
    return "v0=" + mac.hexdigest()


def check_slack(signing_secret: str, timestamp: str, signature: str, body: bytes, now_s: float,
                window_s: float = 300.0) -> None:
    _check_timed(lambda: slack_signature(signing_secret, timestamp, body), timestamp, signature,
                 now_s, window_s, "X-Slack-Signature", "X-Slack-Request-Timestamp")


def _check_timed(expected, timestamp: str, signature: str, now_s: float, window_s: float,
                 sig_header: str, ts_header: str) -> None:
    """A signature over a timestamped body, refused beyond ``window_s`` of skew."""
    if not timestamp.isdigit() or not signature:
        raise Refused(f"missing {sig_header} or {ts_header}")
    if abs(int(timestamp) - now_s) > window_s:
        raise Refused("timestamp too far from now")
    if not equal(expected(), signature):
        raise Refused(f"bad {sig_header}")


# -- generic bridge --------------------------------------------------------------------

def generic_signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=`` + hex HMAC-SHA256(secret, timestamp + "." + body)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def check_generic(secret: str, timestamp: str, signature: str, body: bytes, now_s: float,
                  window_s: float = 300.0) -> None:
    _check_timed(lambda: generic_signature(secret, timestamp, body), timestamp, signature,
                 now_s, window_s, "X-Broadcaster-Signature", "X-Broadcaster-Timestamp")


# -- Telegram --------------------------------------------------------------------------

def check_telegram(secret_token: str, given: str) -> None:
    if not given or not equal(secret_token, given):
        raise Refused("bad X-Telegram-Bot-Api-Secret-Token")
