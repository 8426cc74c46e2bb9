"""REST API views: thin adapters. Each resolves the team through the one access helper
(apps.teams.access.resolve_team_for_api) and then reads only from that team's rows."""

from __future__ import annotations

import json

from asgiref.sync import sync_to_async
from django.core.paginator import Paginator
from django.db.models import Count, F, QuerySet, Window
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework import generics, pagination, parsers, status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.fields import empty
from rest_framework.permissions import SAFE_METHODS
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.api import serializers as s
from apps.api import services
from apps.api.authentication import BatchItemThrottle, principal
from apps.api.models import ApiKey, Batch
from apps.api.statements import STATEMENTS, PreparedList
from apps.collections import access
from apps.collections import services as collections
from apps.core.bodylimit import declared_length, too_large_message, upload_limit
from apps.documents import estimates, titles
from apps.documents import services as documents
from apps.teams.access import resolve_for_api

IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="Retrying a POST with the same key and body returns the batch made first.",
)
ERRORS = {
    400: OpenApiResponse(description="Invalid input; the body says which field."),
    401: OpenApiResponse(description="No or invalid credentials."),
    403: OpenApiResponse(description="Role or key scope too low."),
    404: OpenApiResponse(description="No such team or object (or not yours)."),
}


BIGINT_MAX = 2**63 - 1  # the largest OFFSET Postgres takes


class OneQueryPaginator(Paginator):
    """Django's paginator, reading a page and the total (`count`) in one statement: each of the
    page's rows carries the number of rows of the whole filtered list (`COUNT(*) OVER ()`,
    counted before LIMIT and OFFSET apply). A window instead of a COUNT subquery: the
    subquery was the list's query again, cloned, resolved and compiled on every request (a
    third of the page's CPU). A page past the end has no row to carry the count, so that
    case (a 404 anyway) counts apart; so do lists that a window would count before their
    DISTINCT or GROUP BY takes rows away."""

    def page(self, number):
        listed = self.object_list
        prepared = isinstance(listed, PreparedList)  # built only if its statement is new
        if (
            not (prepared or isinstance(listed, QuerySet) and self._counted_by_window(listed))
            or self.orphans
            or "count" in self.__dict__
        ):
            return self._apart(number)
        try:
            first = int(number)  # validate_number below has the last word on the form
        except (TypeError, ValueError):
            first = 0
        bottom = (first - 1) * self.per_page
        top = bottom + self.per_page
        if first < 1 or top > BIGINT_MAX:
            return self._apart(number)  # refused there (an offset Postgres cannot take: 404)
        if prepared:
            rows = STATEMENTS.get(
                (listed.key, bottom, self.per_page),
                lambda: self._counted(listed.queryset)[bottom:top],
            ).rows()
        else:
            rows = list(self._counted(listed)[bottom:top])
        if not rows and first > 1:
            return self._apart(number)
        head = rows[0] if rows else {"page_total": 0}  # an instance, or a dict from .values()
        self.__dict__["count"] = (
            head["page_total"] if isinstance(head, dict) else head.page_total
        )  # the cached property
        return self._get_page(rows, self.validate_number(number), self)

    def _apart(self, number):
        """Django's own page: the count, then the page, each a query."""
        if isinstance(self.object_list, PreparedList):
            self.object_list = self.object_list.queryset
        return super().page(number)

    @classmethod
    def _counted(cls, rows: QuerySet) -> QuerySet:
        if not cls._counted_by_window(rows):
            raise TypeError("a DISTINCT, grouped or sliced list is counted apart")
        return rows.annotate(page_total=Window(Count("*")))

    @staticmethod
    def _counted_by_window(rows: QuerySet) -> bool:
        query = rows.query
        return not (
            query.distinct or query.combinator or query.group_by is not None or query.is_sliced
        )


class Pages(pagination.PageNumberPagination):
    django_paginator_class = OneQueryPaginator
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class TeamAPIView(generics.GenericAPIView):
    """Resolves `self.team` for every request before the handler runs."""

    pagination_class = Pages
    read_only = False  # True: a view whose POST changes nothing (a dry run), for read keys

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authentication, permission, throttling
        write = request.method not in SAFE_METHODS and not self.read_only
        key = principal(request)
        self.team, membership = resolve_for_api(key, kwargs["slug"], write=write)
        self.who = membership or key  # what apps.collections.access asks about

    def readable(self, who=None):
        """The team's documents this key or user (or ``who``, the same as an access Reader)
        may read (apps.collections.access), each with its collection's id."""
        return access.readable_documents(self.team, who or self.who).annotate(
            collection=F("filing__collection")
        )

    def api_key(self):
        return self.request.auth if isinstance(self.request.auth, ApiKey) else None

    def user(self):
        user = self.request.user
        return user if user and user.is_authenticated else None

    def filters(self, serializer_class) -> dict:
        if not self.request.query_params and not any(
            f.required or f.default is not empty for f in serializer_class._declared_fields.values()
        ):
            return {}  # what validating nothing gives (a list's first page, the usual request)
        params = serializer_class(data=self.request.query_params.dict())
        params.is_valid(raise_exception=True)
        return params.validated_data


class TeamList(APIView):
    @extend_schema(
        responses={200: s.TeamSerializer(many=True), **ERRORS},
        summary="Teams this key or user can reach",
    )
    def get(self, request):
        who = principal(request)
        if isinstance(who, ApiKey):
            rows = [{"slug": who.team.slug, "name": who.team.name, "role": "api-key"}]
        else:
            rows = [
                {"slug": m.team.slug, "name": m.team.name, "role": m.role}
                for m in who.memberships.select_related("team").order_by("team__name")
            ]
        return Response(s.TeamSerializer(rows, many=True).data)


# -- Documents ---------------------------------------------------------------------------------


class DocumentList(TeamAPIView):
    serializer_class = s.DocumentSerializer
    parser_classes = [parsers.MultiPartParser, parsers.FormParser]

    @extend_schema(
        parameters=[s.DocumentFilterSerializer],
        responses={200: s.DocumentSerializer(many=True), **ERRORS},
        summary="List documents (filters: status, kind, q)",
    )
    def get(self, request, slug):
        wanted = self.filters(s.DocumentFilterSerializer)
        reader = access.reader(self.team, self.who)

        def build():
            rows = collections.in_collection(
                self.readable(reader),
                access.readable_collections(self.team, reader),
                wanted.get("collection", ""),
            )
            if "status" in wanted:
                rows = rows.filter(status=wanted["status"])
            if "kind" in wanted:
                rows = rows.filter(kind=wanted["kind"])
            if "q" in wanted:
                rows = rows.filter(title__icontains=wanted["q"])
            # The serializer's columns as plain rows: no model instance per row (its creation
            # cost as much as the page's serialisation), the same values.
            return rows.values(*s.DocumentSerializer.Meta.fields)

        # The list is built from the reader's key and the filters alone: the paginator keeps
        # its pages' statements by them (apps/api/statements.py).
        key = ("documents", reader.key, tuple(sorted(wanted.items())))
        page = self.paginate_queryset(PreparedList(key, build))
        return self.get_paginated_response(s.DocumentSerializer(page, many=True).data)

    @extend_schema(
        request={"multipart/form-data": s.DocumentUploadSerializer},
        responses={
            201: s.DocumentSerializer,
            200: s.DocumentSerializer,
            413: OpenApiResponse(description="File too large."),
            **ERRORS,
        },
        summary="Upload a document (ingestion is queued; 200 if already there)",
    )
    def post(self, request, slug):
        length, limit = declared_length(request.META), upload_limit(1)
        if length > limit:  # refused before the body is parsed (the ASGI edge does too)
            return Response(
                {
                    "file": [too_large_message(limit, "DOCUMENT_MAX_BYTES", length)],
                    "code": "too_large",
                },
                status=413,
            )
        files = request.FILES.getlist("file")
        unknown = sorted(set(request.data) - {"file", "collection"})
        if unknown:
            raise ValidationError(
                {name: ["Unknown field. Allowed: file, collection."] for name in unknown}
            )
        if len(files) != 1:
            raise ValidationError(
                {"file": [f"Send exactly one file in the “file” field (got {len(files)})."]}
            )
        try:
            target = collections.target(self.team, self.who, request.data.get("collection"))
        except collections.CollectionRefused as err:
            raise ValidationError({"collection": [str(err)]}) from None
        try:
            outcome = collections.upload(self.team, self.who, self.user(), files[0], target)
        except documents.UploadRefused as err:
            return Response({"file": [err.message], "code": err.code}, status=err.status)
        document = self.readable().get(pk=outcome.document.pk)
        return Response(
            s.DocumentSerializer(document).data,
            status=status.HTTP_201_CREATED if outcome.created else status.HTTP_200_OK,
        )


class DocumentView(TeamAPIView):
    def document(self, pk: int):
        """404 if this key or user may not read it; 403 to change it with read access only."""
        document = self.readable().filter(pk=pk).first()
        if document is None:
            raise NotFound("No such document in this team.")
        if (
            self.request.method not in SAFE_METHODS
            and not access.writable_documents(self.team, self.who).filter(pk=pk).exists()
        ):
            raise PermissionDenied("Read access only to this document's collection.")
        return document


class DocumentDetail(DocumentView):
    serializer_class = s.DocumentSerializer

    @extend_schema(responses={200: s.DocumentSerializer, **ERRORS}, summary="Get a document")
    def get(self, request, slug, pk):
        return Response(s.DocumentSerializer(self.document(pk)).data)

    @extend_schema(
        request=s.DocumentUpdateSerializer,
        responses={200: s.DocumentSerializer, **ERRORS},
        summary="Rename a document",
    )
    def patch(self, request, slug, pk):
        document = self.document(pk)
        body = s.DocumentUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            titles.rename(document, body.validated_data["title"])
        except titles.TitleRefused as err:
            raise ValidationError({"title": [str(err)]}) from None
        return Response(s.DocumentSerializer(document).data)

    @extend_schema(
        responses={204: None, **ERRORS}, summary="Delete a document with its chunks and file"
    )
    def delete(self, request, slug, pk):
        documents.delete(self.document(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class QuestionEstimate(TeamAPIView):
    """A dry run: what a question would cost with each strategy; nothing runs."""

    serializer_class = s.QuestionEstimateSerializer
    read_only = True  # a POST that changes nothing: read keys may ask

    @extend_schema(
        request=s.QuestionEstimateSerializer,
        responses={200: OpenApiTypes.OBJECT, **ERRORS},
        summary="Estimate a question's cost per strategy (dry run)",
    )
    def post(self, request, slug):
        body = s.QuestionEstimateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            found = estimates.question_preview(
                self.team,
                body.validated_data["document_ids"],
                body.validated_data["question"],
                documents=self.readable(),
            )
        except estimates.EstimateRefused as err:
            raise ValidationError({"detail": str(err)}) from None
        return Response(found.to_dict())


class DocumentPage(DocumentView):
    serializer_class = s.PageTextSerializer

    @extend_schema(
        responses={
            200: s.PageTextSerializer,
            409: OpenApiResponse(description="Not ingested yet."),
            **ERRORS,
        },
        summary="Text of one page (1-based)",
    )
    def get(self, request, slug, pk, page):
        document = self.document(pk)
        if document.status != "ready":
            return Response(
                {
                    "detail": f"The document is not ready (status: {document.status})."
                    " Its text is available once it is ingested."
                },
                status=409,
            )
        try:
            start, end = document.page_bounds(page)
        except ValueError as err:
            raise NotFound(f"No page {page}: {err}.") from err
        return Response(
            {
                "document_id": document.pk,
                "page": page,
                "pages": len(document.page_starts),
                "start": start,
                "end": end,
                "text": document.text[start:end],
            }
        )


# -- Batches -----------------------------------------------------------------------------------


class BatchList(TeamAPIView):
    serializer_class = s.BatchSerializer

    @extend_schema(
        responses={200: s.BatchSerializer(many=True), **ERRORS},
        summary="List batches, newest first",
    )
    def get(self, request, slug):
        page = self.paginate_queryset(access.visible_batches(self.team, self.who))
        return self.get_paginated_response(s.BatchSerializer(page, many=True).data)

    @extend_schema(
        request=s.BatchCreateSerializer,
        parameters=[IDEMPOTENCY_HEADER],
        examples=[
            OpenApiExample(
                "Questions of a document",
                request_only=True,
                value={
                    "kind": "qa",
                    "questions": ["Who keeps the lighthouse?"],
                    "document_ids": [1],
                    "strategy": "auto",
                },
            )
        ],
        responses={
            201: s.BatchSerializer,
            200: s.BatchSerializer,
            413: OpenApiResponse(description="Body over API_JSON_MAX_BYTES."),
            422: OpenApiResponse(description="Idempotency-Key reused."),
            429: OpenApiResponse(
                description="Too many requests or batch items for this key; see Retry-After."
            ),
            **ERRORS,
        },
        summary="Submit a batch of qa, compress or write items",
    )
    def post(self, request, slug):
        if not isinstance(request.data, dict):
            raise ValidationError({"detail": "The body must be a JSON object."})
        body = s.BatchCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        key = request.headers.get("Idempotency-Key", "").strip() or None
        if key and len(key) > 200:
            raise ValidationError({"Idempotency-Key": ["At most 200 characters."]})
        try:
            submission = services.submit_batch(
                self.team,
                dict(body.validated_data),
                user=self.user(),
                api_key=self.api_key(),
                idempotency_key=key,
                documents=self.readable(),
                collections=access.readable_collections(self.team, self.who),
                admit=lambda items: BatchItemThrottle().admit(request, self, items),
            )
        except services.BatchRefused as err:
            return Response(err.errors, status=err.status)
        data = s.BatchSerializer(submission.batch, context={"show_secret": submission.created})
        return Response(data.data, status=201 if submission.created else 200)


class BatchView(TeamAPIView):
    serializer_class = s.BatchSerializer

    def batch(self, pk: int) -> Batch:
        batch = access.visible_batches(self.team, self.who).filter(pk=pk).first()
        if batch is None:
            raise NotFound("No such batch in this team.")
        return batch


class BatchDetail(BatchView):
    @extend_schema(responses={200: s.BatchSerializer, **ERRORS}, summary="Batch status and counts")
    def get(self, request, slug, pk):
        return Response(s.BatchSerializer(self.batch(pk)).data)


class BatchCancel(BatchView):
    @extend_schema(
        request=None,
        responses={200: s.BatchSerializer, **ERRORS},
        summary="Cancel the items that have not finished",
    )
    def post(self, request, slug, pk):
        batch = self.batch(pk)
        if not batch.is_finished:
            batch = services.cancel_batch(batch)
        return Response(s.BatchSerializer(batch).data)


class BatchRetry(BatchView):
    @extend_schema(
        request=None,
        responses={200: s.BatchSerializer, **ERRORS},
        summary="Run the failed items again (the batch opens again until they end)",
    )
    def post(self, request, slug, pk):
        batch = self.batch(pk)
        services.retry_failed(batch)
        batch.refresh_from_db()
        return Response(s.BatchSerializer(batch).data)


class BatchResults(BatchView):
    serializer_class = s.BatchItemSerializer

    @extend_schema(
        parameters=[s.ResultsFilterSerializer],
        responses={200: s.BatchItemSerializer(many=True), **ERRORS},
        summary="Items with status, progress and results, in pages",
    )
    def get(self, request, slug, pk):
        wanted = self.filters(s.ResultsFilterSerializer)
        items = self.batch(pk).items.select_related("job")
        if "status" in wanted:
            items = items.filter(status=wanted["status"])
        page = self.paginate_queryset(items)
        return self.get_paginated_response(s.BatchItemSerializer(page, many=True).data)


class BatchResultsJsonl(BatchView):
    @extend_schema(
        responses={(200, "application/x-ndjson"): OpenApiTypes.STR, **ERRORS},
        summary="All items as JSON lines (streamed)",
    )
    def get(self, request, slug, pk):
        batch = self.batch(pk)

        def page_after(index: int) -> list:
            return list(batch.items.filter(index__gt=index).order_by("index")[:500])

        async def lines():
            # Pages by index, each read in a thread: the server (ASGI) sends as it reads, and
            # no database cursor stays open while a slow client downloads.
            last = -1
            while rows := await sync_to_async(page_after)(last):
                for item in rows:
                    yield json.dumps(services.item_record(item), ensure_ascii=False) + "\n"
                last = rows[-1].index

        response = StreamingHttpResponse(lines(), content_type="application/x-ndjson")
        response["Content-Disposition"] = f'attachment; filename="batch-{batch.pk}.jsonl"'
        return response
