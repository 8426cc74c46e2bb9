"""A `write` item without a target takes the length its instruction states."""

from __future__ import annotations

import pytest

from apps.api.models import BatchItem
from tests.api.conftest import url
from workers.writing import DEFAULT_TARGET_WORDS

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("item", "target"), [
    ({"instruction": "Write a 400-word essay on lighthouses."}, 400),
    ({"instruction": "A history of lighthouses in about 3,000 words."}, 3000),
    ({"instruction": "Write a 400-word essay on lighthouses.", "target_words": 250}, 250),
    ({"instruction": "A short note on lighthouses."}, DEFAULT_TARGET_WORDS),
])
def test_write_items_take_the_stated_length_when_no_target_is_given(key_client, team, item,
                                                                     target):
    response = key_client.post(url(team, "batches/"), {"kind": "write", "items": [item]},
                               format="json")
    assert response.status_code == 201, response.content
    assert BatchItem.objects.get(batch_id=response.json()["id"]).input["target_words"] == target
