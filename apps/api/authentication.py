"""DRF glue: Bearer API keys, the principal permission, per-key throttling."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.redis import RedisCache
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
    """One bucket per API key (per user for session requests); rate: API_THROTTLE_RATE.

    Counted in the shared cache (Redis: every web process together) with atomic increments,
    so concurrent requests cannot all read the same history and pass together, as DRF's
    list of timestamps lets them. A sliding window estimated from two fixed ones: this
    window's count plus the previous one's, weighted by how much of it still overlaps."""

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

    def take(self, request, view, n: int = 1) -> bool:
        """Count n against the bucket; False (and nothing counted) if that passes the rate."""
        key = self.get_cache_key(request, view)
        if self.rate is None or key is None:
            return True
        now, length, limit = self.timer(), self.duration, self.num_requests
        window = int(now // length)
        current = f"{key}:{window}"
        used, previous = self.count(current, f"{key}:{window - 1}", n, 2 * length + 1)
        elapsed = now - window * length
        if previous * (1 - elapsed / length) + used <= limit:
            return True
        self.cache.decr(current, n)
        before = used - n
        if previous and before + n <= limit:  # fits later in this window, as previous fades
            self.wait_seconds = length * (1 - (limit - before - n) / previous) - elapsed
        else:  # fits in the next window, once this one has faded enough
            self.wait_seconds = length - elapsed + (
                length * (1 - (limit - n) / before) if before else 0)
        return False

    def count(self, current: str, previous: str, n: int, ttl: int) -> tuple[int, int]:
        """Add n to this window's counter (made with a lifetime of ttl: read as the previous
        one next window); returns it and the previous window's counter."""
        cache = self.cache
        if not isinstance(cache, BaseCache):  # DRF's default: the proxy to caches["default"]
            cache = caches[DEFAULT_CACHE_ALIAS]
        if isinstance(cache, RedisCache):
            # One round trip instead of four (add; exists and incr; get): every API request
            # pays it. Integers are stored raw, as the cache's own incr and get expect.
            names = [cache.make_and_validate_key(k) for k in (current, previous)]
            with cache._cache.get_client(names[0], write=True).pipeline() as pipe:
                pipe.set(names[0], 0, ex=ttl, nx=True)
                pipe.incrby(names[0], n)
                pipe.get(names[1])
                _, used, before = pipe.execute()  # MULTI/EXEC: the key cannot expire between
            return int(used), int(before or 0)
        self.cache.add(current, 0, ttl)
        try:
            used = self.cache.incr(current, n)
        except ValueError:  # expired between add and incr
            self.cache.add(current, n, ttl)
            used = n
        return used, self.cache.get(previous, 0)

    def allow_request(self, request, view) -> bool:
        return self.take(request, view)

    def wait(self) -> float | None:
        return max(1.0, getattr(self, "wait_seconds", 0.0))


class BatchItemThrottle(ApiKeyRateThrottle):
    """Batch items per key (per user for session requests); rate: API_ITEM_THROTTLE_RATE.

    The request throttle counts a batch of 1,000 items as one request; this one counts its
    items, so big batches cannot sidestep the rate."""

    scope = "api-items"

    def get_rate(self) -> str | None:
        from django.conf import settings

        return settings.API_ITEM_THROTTLE_RATE or None

    def admit(self, request, view, items: int) -> None:
        """Take `items` from the key's rate, or raise Throttled (429 with Retry-After)."""
        if self.rate is None:
            return
        if items > self.num_requests:
            raise exceptions.ValidationError({"items": [
                f"The batch has {items:,} items; this key may submit at most "
                f"{self.num_requests:,} per {self.duration:,} s (API_ITEM_THROTTLE_RATE)."]})
        if not self.take(request, view, items):
            raise exceptions.Throttled(self.wait(), detail=(
                f"This batch of {items:,} items would pass this key's {self.num_requests:,} "
                f"batch items per {self.duration:,} s (API_ITEM_THROTTLE_RATE)."))
