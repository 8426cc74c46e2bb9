"""DRF glue: Bearer API keys, the principal permission, per-key throttling."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions, throttling

from apps.api import keys
from apps.api.models import ApiKey


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer sk_live_…`. request.auth is the ApiKey; request.user its
    creator (for created_by), which grants nothing by itself: the key's team and scopes do."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "Malformed Authorization header; use “Authorization: Bearer <key>”.")
        try:
            key = keys.authenticate(header[1].decode("ascii", "replace"))
        except keys.InvalidKey as err:
            raise exceptions.AuthenticationFailed(str(err)) from err
        return (key.created_by or AnonymousUser(), key)

    def authenticate_header(self, request) -> str:
        return f'{self.keyword} realm="api"'


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "apps.api.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer",
                "description": "A team API key, made on the team settings page."}


def principal(request):
    """What the team access helper checks: the API key, or the signed-in user."""
    if isinstance(request.auth, ApiKey):
        return request.auth
    return request.user if request.user and request.user.is_authenticated else None


class HasPrincipal(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        return principal(request) is not None


class ApiKeyRateThrottle(throttling.SimpleRateThrottle):
    """One bucket per API key (per user for session requests); rate: API_THROTTLE_RATE."""

    scope = "api"

    def get_cache_key(self, request, view):
        who = principal(request)
        if isinstance(who, ApiKey):
            ident = f"key-{who.pk}"
        elif who is not None:
            ident = f"user-{who.pk}"
        else:
            ident = f"ip-{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def get_rate(self) -> str | None:
        from django.conf import settings

        return settings.API_THROTTLE_RATE or None  # read per request: settings may change
