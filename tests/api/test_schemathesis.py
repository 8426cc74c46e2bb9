"""Property-based requests generated from the OpenAPI schema: no input gives a 5xx.

Every operation of the schema, with a read-and-write key, in both of schemathesis's modes:
positive (bodies and parameters the schema allows) and negative (ones it forbids). Bounded:
EXAMPLES per operation and mode, in-process through the WSGI app and the test database, so
the run takes about a minute. Path slugs point at the key's team; half the examples use the
ids of a real document and batch (made again when an example deleted them) and put the real
document's id into batch bodies, so the requests reach the handlers' deeper paths."""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from apps.api import keys
from apps.api.models import Batch
from apps.documents.models import Document
from tests.api.conftest import ready_document

pytestmark = [pytest.mark.django_db,
              pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume")]
EXAMPLES = 25


@pytest.fixture
def app(settings):
    settings.API_THROTTLE_RATE = ""  # hundreds of requests in a few seconds on purpose
    settings.API_ITEM_THROTTLE_RATE = ""
    # As Django's test client does: the request cycle must not close the test's connection.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield get_wsgi_application()
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


class Real:
    """A real document and batch of the team, made again if an example deleted them."""

    def __init__(self, team):
        self.team, self.document, self.batch = team, None, None

    def ids(self) -> dict[str, int]:
        if self.document is None or not Document.objects.filter(pk=self.document.pk).exists():
            self.document = ready_document(self.team, title=f"Real {Document.objects.count()}")
        if self.batch is None or not Batch.objects.filter(pk=self.batch.pk).exists():
            self.batch = Batch.objects.create(team=self.team, kind="qa", total=0)
        return {"documents": self.document.pk, "batches": self.batch.pk}


def _with_real_documents(body, document_id: int):
    """A batch body with its document ids pointing at the real document."""
    if not isinstance(body, dict):
        return body
    body = dict(body)
    if isinstance(body.get("document_ids"), list):
        body["document_ids"] = [document_id]
    if isinstance(body.get("items"), list):
        body["items"] = [{**i, "document_ids": [document_id]}
                         if isinstance(i, dict) and "document_ids" in i else i
                         for i in body["items"]]
    return body


def _api_handlers() -> list[tuple[str, str]]:
    """(method, route) of every handler of the API's views, from the URL configuration."""
    from apps.api.urls import team_patterns, urlpatterns

    views = [(str(p.pattern), getattr(p.callback, "view_class", None))
             for p in [*urlpatterns, *team_patterns] if hasattr(p, "callback")]
    return [(m, route) for route, view in views if view and view.__module__ == "apps.api.views"
            for m in ("get", "post", "put", "patch", "delete") if hasattr(view, m)]


def test_no_generated_request_gives_a_server_error(app, team, owner):
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", app)
    token = keys.create_key(team, owner, "fuzz", ["read", "write"])[1]
    real = Real(team)
    failures, seen = [], Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    # Every handler of the API is in the schema, so every one is fuzzed here.
    assert len({(op.method, op.path) for op in operations}) == len(_api_handlers()) >= 12

    def fuzz(operation, mode):
        @hypothesis_settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode), use_real=st.booleans())
        def check(case, use_real):
            params = case.path_parameters or {}
            if "slug" in params:
                params["slug"] = team.slug
            if use_real:
                ids = real.ids()
                if "id" in params:
                    kind = "documents" if "/documents/" in operation.path else "batches"
                    params["id"] = ids[kind]
                if "page" in params:
                    params["page"] = 1 + abs(hash(str(params["page"]))) % 3  # 1, 2 or past
            if operation.path.endswith("/batches/") and case.method == "POST":
                # Always the real document: the schema's example says document 1, which
                # exists only when this test runs first on a fresh database.
                case.body = _with_real_documents(case.body, real.ids()["documents"])
            response = case.call(headers={"Authorization": f"Bearer {token}"})
            seen[f"{case.method} {operation.path} {response.status_code}"] += 1
            if response.status_code >= 500:
                failures.append(f"{mode.value}: {case.method} {case.formatted_path} -> "
                                f"{response.status_code}: {response.text[:300]}\n"
                                f"{case.as_curl_command()}")

        check()

    for operation in operations:
        for mode in GenerationMode:
            fuzz(operation, mode)
    print(sorted(seen.items()))
    assert not failures, "\n\n".join(failures[:5])
    # The requests reached the handlers: successes and refusals of input, not only 404s.
    statuses = {key.rsplit(" ", 1)[1] for key in seen}
    assert {"200", "201", "204", "400"} <= statuses, statuses
    assert any(k.startswith("POST /api/v1/teams/{slug}/batches/ 201") for k in seen)
    assert any(k.startswith("GET /api/v1/teams/{slug}/documents/{id}/pages/{page}/ 200")
               for k in seen)


# Any character, the awkward ones often: NUL, lone surrogates, RTL override, BOM.
CHARACTERS = st.sampled_from("\x00\ud800\udfff\u202e\ufeff é") | st.characters(
    exclude_categories=())
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(CHARACTERS, max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                               max_size=3),
    max_leaves=6)


def test_no_item_input_gives_a_server_error(team, document, key_client, settings):
    """The schema says an item is any JSON object, so generated bodies rarely get past the
    first check; here every item is a valid one of its kind with up to two fields changed to
    any JSON value (NUL, lone surrogates, huge numbers, nesting), another plausible value, or
    left out."""
    import json

    from apps.api.items import get_item_kind, item_kinds
    from tests.api.conftest import url
    from workers.qa.options import STRATEGY_NAMES, option_names

    settings.API_THROTTLE_RATE = settings.API_ITEM_THROTTLE_RATE = ""
    failures, statuses = [], Counter()

    valid = {"qa": {"question": "Who keeps the lighthouse?", "document_ids": [document.pk]},
             "compress": {"text": "Some text to make shorter.", "ratio": 2},
             "write": {"instruction": "A note on lighthouses", "target_words": 100}}
    text = st.text(CHARACTERS, min_size=1, max_size=30)
    other = {  # values that pass a field's check, or nearly
        "document_ids": st.just([document.pk]), "document_id": st.just(document.pk),
        "strategy": st.sampled_from(STRATEGY_NAMES),
        "options": st.dictionaries(st.sampled_from(sorted({n for s in STRATEGY_NAMES
                                                           for n in option_names(s)}
                                                          | {"answer_tokens"})),
                                   st.integers() | st.booleans() | st.floats(), max_size=2),
        "ratio": st.floats(1.01, 20), "target_tokens": st.integers(1, 10**6),
        "target_words": st.integers(50, 2000), "method": st.sampled_from(["scope", "deletion"]),
    }

    def item(kind):
        """A valid item with up to two fields set to something else (None: left out)."""
        change = st.sampled_from(get_item_kind(kind).fields).flatmap(lambda field: st.tuples(
            st.just(field), st.one_of(other.get(field, text), text, JSON, st.none())))
        return st.lists(change, max_size=2).map(lambda changes: {
            k: v for k, v in {**valid[kind], **dict(changes)}.items() if v is not None})

    @hypothesis_settings(max_examples=EXAMPLES * 4, deadline=None, database=None,
                         derandomize=True, suppress_health_check=list(HealthCheck))
    @given(body=st.sampled_from(item_kinds()).flatmap(
        lambda kind: st.fixed_dictionaries({"kind": st.just(kind),
                                            "items": st.lists(item(kind), min_size=1,
                                                              max_size=3)})))
    def check(body):
        response = key_client.post(url(team, "batches/"), json.dumps(body),
                                   content_type="application/json")
        statuses[response.status_code] += 1
        if response.status_code >= 500:
            failures.append(f"{json.dumps(body)} -> {response.status_code}")

    check()
    assert not failures, "\n".join(failures[:5])
    assert statuses[201] and statuses[400], statuses  # valid and refused items both reached
