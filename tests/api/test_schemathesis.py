"""Property-based requests generated from the OpenAPI schema: no input gives a 5xx.

Bounded: a few examples per operation, in-process through the WSGI app and the test
database; path slugs point at a real team so the requests reach the handlers."""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from apps.api import keys
from apps.api.models import Batch
from tests.api.conftest import ready_document

pytestmark = [pytest.mark.django_db,
              pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume")]
EXAMPLES = 12


@pytest.fixture
def app(settings):
    settings.API_THROTTLE_RATE = ""  # hundreds of requests in a few seconds on purpose
    # As Django's test client does: the request cycle must not close the test's connection.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield get_wsgi_application()
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def test_no_generated_request_gives_a_server_error(app, team, owner):
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", app)
    token = keys.create_key(team, owner, "fuzz", ["read", "write"])[1]
    document = ready_document(team)
    batch = Batch.objects.create(team=team, kind="qa", total=0)
    real_ids = {"documents": document.pk, "batches": batch.pk}
    failures, seen = [], Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12
    def fuzz(operation):
        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(), real=st.booleans())
        def check(case, real):
            if "slug" in (case.path_parameters or {}):
                case.path_parameters["slug"] = team.slug
            if real and "id" in (case.path_parameters or {}):
                kind = "documents" if "/documents/" in operation.path else "batches"
                case.path_parameters["id"] = real_ids[kind]
            response = case.call(headers={"Authorization": f"Bearer {token}"})
            seen[f"{case.method} {operation.path} {response.status_code}"] += 1
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> "
                                f"{response.status_code}: {response.text[:300]}\n"
                                f"{case.as_curl_command()}")

        check()

    for operation in operations:
        fuzz(operation)
    assert not failures, "\n\n".join(failures[:5])
    print(sorted(seen.items()))
    # The requests reached the handlers: successes and refusals of input, not only 404s.
    assert any(" 2" in k for k in seen) and any(k.endswith(" 400") for k in seen)
