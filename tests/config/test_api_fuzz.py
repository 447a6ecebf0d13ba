"""Input outside the schema is refused: schemathesis sends every GET operation values its schema
rules out (a value outside an enumeration, an empty one, a number out of range, a word for a
number) and each must be a 4xx, never a 200 that quietly ignored the parameter, nor a 5xx.

tests/test_api_schema.py covers the rest (no 5xx for any input, responses as documented); this
adds the refusal check it leaves out. Bounded in examples per operation, and in-process: the
requests go to the WSGI application, never the network.
"""

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import negative_data_rejection

from config.wsgi import application
from tests.factories import AssetIdentifierFactory, QuoteFactory, RunFactory

EXAMPLES_PER_OPERATION = 20


def load_schema() -> schemathesis.schemas.BaseSchema:
    """The schema /api/schema/ serves, generated in-process, its requests sent to the WSGI app."""
    generated = SchemaGenerator().get_schema(request=None, public=True)
    loaded = schemathesis.openapi.from_dict(json.loads(OpenApiJsonRenderer().render(generated)))
    loaded.app = application
    loaded.config.generation.update(modes=[GenerationMode.NEGATIVE])
    return loaded.include(method="GET")


schema = load_schema()


@pytest.fixture
def seeded(db, settings) -> Iterator[None]:
    """A few rows, so a filter that is wrongly ignored answers with them; no throttling."""
    settings.THROTTLE_RATES = {"anon": "", "trigger": ""}
    now = datetime.now(UTC)
    for hour in range(3):
        asset = AssetIdentifierFactory().asset
        QuoteFactory(asset=asset, observed_at=now - timedelta(hours=hour))
        RunFactory(started_at=now - timedelta(hours=hour))
    # As Django's test client does: the request-end hook must not close the connection that
    # holds this test's transaction.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_input_outside_the_schema_is_refused(case, seeded):
    case.call_and_validate(checks=[not_a_server_error, negative_data_rejection])
