"""User JWTs for tests: signing keys, tokens, and a JWKS served by a real HTTP server on
127.0.0.1 (it counts its requests, and its document can be swapped mid-test)."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

HS_SECRET = "test-jwt-secret-0123456789abcdef-0123456789"
AUDIENCE = "authenticated"


@dataclass(frozen=True)
class SigningKey:
    algorithm: str
    kid: str
    private: Any
    public_jwk: dict[str, Any]


def rsa_key(kid: str = "rsa-1") -> SigningKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
    return SigningKey("RS256", kid, private, {**jwk, "kid": kid, "use": "sig"})


def ec_key(kid: str = "ec-1") -> SigningKey:
    private = ec.generate_private_key(ec.SECP256R1())
    jwk = ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
    return SigningKey("ES256", kid, private, {**jwk, "kid": kid, "use": "sig"})


def claims(
    sub: str | None = "user-1", *, expires_in: float = 86_400, **extra: Any
) -> dict[str, Any]:
    """Claims of a token valid for a day: tests built at collection time stay valid
    through a long suite (a 10-minute token expired before the unit tests ran)."""
    now = int(time.time())
    body: dict[str, Any] = {"aud": AUDIENCE, "iat": now, "exp": now + int(expires_in), **extra}
    if sub is not None:
        body["sub"] = sub
    return body


def hs256(payload: dict[str, Any], secret: str = HS_SECRET) -> str:
    return jwt.encode(payload, secret, algorithm="HS256")


def signed(key: SigningKey, payload: dict[str, Any], *, kid: str | None = "") -> str:
    """A token signed by `key`; `kid` "" names the key's own id, None names none."""
    headers = {} if kid is None else {"kid": kid or key.kid}
    return jwt.encode(payload, key.private, algorithm=key.algorithm, headers=headers)


def unsigned(payload: dict[str, Any]) -> str:
    """An `alg: none` token, built by hand (PyJWT will not verify one, nor should we)."""

    def part(value: dict[str, Any]) -> str:
        raw = json.dumps(value, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."


@dataclass
class JwksServer:
    port: int
    document: dict[str, Any] = field(default_factory=lambda: {"keys": []})
    requests: int = 0
    status: int = 200

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/.well-known/jwks.json"

    def publish(self, *keys: SigningKey, extra: list[dict[str, Any]] | None = None) -> None:
        self.document = {"keys": [k.public_jwk for k in keys] + (extra or [])}


@contextmanager
def jwks_server(*keys: SigningKey) -> Iterator[JwksServer]:
    state = JwksServer(port=0)
    state.publish(*keys)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            state.requests += 1
            body = json.dumps(state.document).encode()
            self.send_response(state.status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
