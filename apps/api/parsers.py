"""The REST API's JSON parser, bounded: DRF's own reads the whole body whatever its size
(Django's DATA_UPLOAD_MAX_MEMORY_SIZE only guards request.body and forms)."""

from __future__ import annotations

from io import BytesIO

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import APIException

from apps.core.bodylimit import too_large_message


class BodyTooLarge(APIException):
    status_code = 413
    default_code = "too_large"


class LimitedJSONParser(parsers.JSONParser):
    """Reads at most API_JSON_MAX_BYTES (+1 to tell) before parsing; more is a 413."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.API_JSON_MAX_BYTES
        data = stream.read(limit + 1)
        if len(data) > limit:
            raise BodyTooLarge(too_large_message(limit, "API_JSON_MAX_BYTES"))
        return super().parse(BytesIO(data), media_type, parser_context)
