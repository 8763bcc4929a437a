"""Single sign-on through an OpenID Connect provider (authorization code flow with PKCE S256): `authlib`'s OAuth 2
client builds the authorization request and redeems the code; `joserfc` checks the ID token — its signature against
the provider's published keys (JWKS; asymmetric algorithms only), issuer, audience (and `azp`), expiry, issue time
and the nonce of this very login.

Between the redirect to the provider and the way back, what the callback needs (state, nonce, PKCE verifier, the page
asked for) rides in a short-lived cookie, signed with a key derived from the client secret (or, for a public client,
a key of this process: a login then has to come back to the process that began it).

This module only says who the provider vouches for (`SsoIdentity`); which account that is — never a new one — is
`AccountStore.account_for_sso`'s decision.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import structlog
from itsdangerous import BadSignature, URLSafeTimedSerializer
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from authlib.deprecate import AuthlibDeprecationWarning

with warnings.catch_warnings():
    # authlib announces a future move from httpx to "httpx2"; httpx is what this project ships.
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.integrations.httpx_client import AsyncOAuth2Client

from services.registry.settings import RegistrySettings

log = structlog.get_logger(__name__)

COOKIE = "ombudsdesk_oidc"
FLOW_SECONDS = 600
METADATA_SECONDS = 300
HTTP_TIMEOUT = 10.0
LEEWAY_SECONDS = 60
# Signatures by the provider's private key only: "none" and shared-secret (HS*) tokens are refused.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")


class SsoError(Exception):
    """A single sign-on that did not prove anyone (`reason` is logged, never shown in detail)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class SsoIdentity:
    issuer: str
    subject: str
    email: str | None
    email_verified: bool
    next_path: str


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    client_id: str
    client_secret: str | None
    scopes: tuple[str, ...]
    button_label: str = ""


def oidc_client(settings: RegistrySettings) -> OidcClient | None:
    """The client the settings describe, or None when single sign-on is not configured."""
    if not settings.oidc_issuer:
        return None
    return OidcClient(OidcConfig(settings.oidc_issuer, settings.oidc_client_id, settings.oidc_client_secret(),
                                 tuple(settings.oidc_scopes), settings.oidc_button_label))


class OidcClient:
    def __init__(self, config: OidcConfig) -> None:
        self.config = config
        key = (hashlib.sha256(b"ombudsdesk oidc flow\0" + config.client_secret.encode()).hexdigest()
               if config.client_secret else secrets.token_hex(32))
        self._flows = URLSafeTimedSerializer(key, salt="ombudsdesk-oidc-flow")
        self._metadata: tuple[float, dict[str, Any]] | None = None

    @property
    def button_label(self) -> str:
        return self.config.button_label

    def _http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=HTTP_TIMEOUT, follow_redirects=False)

    def _oauth(self, redirect_uri: str) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self.config.client_id, client_secret=self.config.client_secret,
            token_endpoint_auth_method="client_secret_basic" if self.config.client_secret else "none",
            scope=" ".join(self.config.scopes), redirect_uri=redirect_uri, code_challenge_method="S256",
            timeout=HTTP_TIMEOUT)

    async def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (kept a few minutes), checked to be the configured issuer's."""
        now = time.monotonic()
        if self._metadata is not None and now - self._metadata[0] < METADATA_SECONDS:
            return self._metadata[1]
        url = self.config.issuer + "/.well-known/openid-configuration"
        try:
            async with self._http() as http:
                response = await http.get(url)
                response.raise_for_status()
                document = response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise SsoError(f"discovery: {type(error).__name__}") from None
        if not isinstance(document, dict) or document.get("issuer") != self.config.issuer:
            raise SsoError("discovery: issuer differs from the configured one")
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(document.get(name), str):
                raise SsoError(f"discovery: no {name}")
        self._metadata = (now, document)
        return document

    async def begin(self, redirect_uri: str, next_path: str) -> tuple[str, str]:
        """The provider's authorization URL to send the browser to, and the flow cookie's value."""
        document = await self.metadata()
        state, nonce, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48)
        async with self._oauth(redirect_uri) as oauth:
            url, _ = oauth.create_authorization_url(document["authorization_endpoint"], state=state,
                                                    code_verifier=verifier, nonce=nonce)
        flow = self._flows.dumps({"state": state, "nonce": nonce, "verifier": verifier, "next": next_path})
        return url, flow

    async def finish(self, redirect_uri: str, params: Mapping[str, str], flow_cookie: str | None) -> SsoIdentity:
        """Check the provider's answer against this browser's flow, redeem the code, check the ID token."""
        if not flow_cookie:
            raise SsoError("no flow cookie")
        try:
            flow = self._flows.loads(flow_cookie, max_age=FLOW_SECONDS)
        except BadSignature:
            raise SsoError("flow cookie invalid or expired") from None
        if "error" in params:
            raise SsoError("provider refused: " + str(params.get("error"))[:60])
        if not secrets.compare_digest(str(params.get("state", "")), str(flow["state"])):
            raise SsoError("state mismatch")
        code = params.get("code")
        if not code:
            raise SsoError("no code")
        document = await self.metadata()
        try:
            async with self._oauth(redirect_uri) as oauth:
                token = await oauth.fetch_token(document["token_endpoint"], grant_type="authorization_code",
                                                code=code, code_verifier=flow["verifier"])
        except Exception as error:  # noqa: BLE001 - authlib raises its own errors and httpx's alike
            raise SsoError(f"token endpoint: {type(error).__name__}") from None
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise SsoError("no ID token")
        claims = await self.verified_claims(id_token, flow["nonce"], document)
        email = claims.get("email")
        return SsoIdentity(issuer=self.config.issuer, subject=str(claims["sub"]),
                           email=email if isinstance(email, str) else None,
                           email_verified=claims.get("email_verified") is True, next_path=str(flow["next"]))

    async def _keys(self, document: Mapping[str, Any]) -> KeySet:
        try:
            async with self._http() as http:
                response = await http.get(document["jwks_uri"])
                response.raise_for_status()
                return KeySet.import_key_set(response.json())
        except (httpx.HTTPError, ValueError, JoseError) as error:
            raise SsoError(f"JWKS: {type(error).__name__}") from None

    async def verified_claims(self, id_token: str, nonce: str, document: Mapping[str, Any]) -> dict[str, Any]:
        keys = await self._keys(document)
        try:
            decoded = jwt.decode(id_token, keys, algorithms=list(ALGORITHMS))
        except (JoseError, ValueError) as error:
            raise SsoError(f"ID token signature: {type(error).__name__}") from None
        claims = dict(decoded.claims)
        registry = jwt.JWTClaimsRegistry(
            leeway=LEEWAY_SECONDS,
            iss={"essential": True, "value": self.config.issuer},
            aud={"essential": True, "value": self.config.client_id},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
            nonce={"essential": True, "value": nonce},
        )
        try:
            registry.validate(claims)
        except JoseError as error:
            raise SsoError(f"ID token claims: {type(error).__name__} {getattr(error, 'claim', '')}") from None
        audience = claims.get("aud")
        if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != self.config.client_id:
            raise SsoError("ID token claims: azp")
        if int(claims["iat"]) > time.time() + LEEWAY_SECONDS:
            raise SsoError("ID token claims: issued in the future")
        return claims
