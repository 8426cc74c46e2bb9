"""A document's language at ingest, and full-text search in it (issue 20.5): German and
French stemming, Chinese by character bigrams, chunks indexed before languages were detected
still found, the language shown on the document page."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.urls import reverse

from apps.documents import fulltext
from apps.documents.models import Chunk, Document
from apps.documents.search import lexical, search
from apps.jobs import services as jobs

pytestmark = pytest.mark.django_db

GERMAN = (
    "Die alten Häuser am Marktplatz wurden im achtzehnten Jahrhundert von reichen Händlern "
    "gebaut. Heute wohnen dort vor allem Familien mit Kindern. Die Stadt hat die Fassaden im "
    "letzten Sommer renoviert, und die Mieten sind seitdem deutlich gestiegen.\n\n"
    "Der Bürgermeister erklärte, dass der Verkehr aus der Altstadt verbannt werden soll."
)
FRENCH = (
    "Les anciennes maisons de la place du marché ont été construites au dix-huitième siècle "
    "par de riches marchands. Aujourd'hui, des familles avec enfants y habitent. La ville a "
    "rénové les façades l'été dernier, et les loyers ont nettement augmenté depuis.\n\n"
    "Le maire a déclaré que la circulation serait bannie de la vieille ville."
)
CHINESE = (
    "市场广场上的老房子是十八世纪由富商建造的。如今住在那里的主要是有孩子的家庭。"
    "去年夏天，市政府翻新了房屋的外墙，此后租金明显上涨。\n\n"
    "市长表示，老城区将禁止机动车通行。"
)
ENGLISH = (
    "The warehouse in Rotterdam shipped four thousand pallets in March. The board approved "
    "a new office in Lisbon, opening in October, and staff numbers will reach ninety."
)


@pytest.fixture
def writer(client, member):
    client.force_login(member)
    return client


def _ingested(client, team, name: str, text: str) -> Document:
    url = reverse("documents:upload", kwargs={"team_slug": team.slug})
    response = client.post(url, {"files": [SimpleUploadedFile(name, text.encode())]},
                           headers={"Accept": "application/json"})
    document = Document.objects.get(pk=response.json()["results"][0]["id"])
    assert jobs.run(document.job.pk, document.job.celery_task_id) == "succeeded"
    document.refresh_from_db()
    return document


def _found(team, query: str) -> set[int]:
    return {c.document_id for c in lexical(team, query)}


def test_each_document_is_indexed_and_searched_in_its_own_language(writer, team):
    german = _ingested(writer, team, "haeuser.txt", GERMAN)
    french = _ingested(writer, team, "maisons.txt", FRENCH)
    chinese = _ingested(writer, team, "fangzi.txt", CHINESE)
    english = _ingested(writer, team, "report.txt", ENGLISH)
    assert (german.language, french.language, chinese.language, english.language) == (
        "de", "fr", "zh", "en")
    assert set(Chunk.objects.filter(document=german).values_list("search_config", flat=True)
               ) == {"german"}
    assert set(Chunk.objects.filter(document=chinese).values_list("search_config", flat=True)
               ) == {"simple"}
    # Stemmed forms: the texts say "Häuser", "Mieten", "Fassaden", "Händlern"; "maisons",
    # "façades", "augmenté".
    assert _found(team, "Haus") == {german.pk}
    assert _found(team, "Miete Fassade Händler") == {german.pk}
    assert _found(team, "maison") == {french.pk}
    assert _found(team, "façade augmenter") == {french.pk}
    # Chinese, by its words: 租金 (rent) and 上涨 (rise), 老城区 (old town).
    assert _found(team, "租金上涨") == {chinese.pk}
    assert _found(team, "老城区") == {chinese.pk}
    assert _found(team, "pallets shipped") == {english.pk}
    assert _found(team, "zebra xylophone") == set()
    assert lexical(team, "Haus", document_ids=[]) == []  # no document: no configuration
    # Hybrid search fuses the lexical arm: the German query's best chunk is the German one.
    assert search(team, "Häuser Marktplatz")[0].chunk.document_id == german.pk
    hit = search(team, "租金上涨", mode="lexical")[0]
    assert hit.chunk.document_id == chinese.pk and "<mark>租金</mark>" in hit.snippet


def test_a_chunk_indexed_before_languages_were_detected_is_still_found(writer, team):
    document = _ingested(writer, team, "report.txt", ENGLISH)
    # As migration 0005 leaves such rows: the "english" vector, the document no language.
    Chunk.objects.filter(document=document).update(
        search_config="english", search=fulltext.index_vector(ENGLISH, "english"))
    Document.objects.filter(pk=document.pk).update(language="")
    assert _found(team, "shipping pallet") == {document.pk}


def test_every_configured_language_is_one_postgres_ships():
    with connection.cursor() as cursor:
        cursor.execute("SELECT cfgname FROM pg_ts_config")
        shipped = {row[0] for row in cursor.fetchall()}
    assert {*fulltext.CONFIGS.values(), fulltext.NEUTRAL, fulltext.LEGACY} <= shipped


def test_the_document_page_shows_the_detected_language(writer, team):
    document = _ingested(writer, team, "haeuser.txt", GERMAN)
    page = writer.get(reverse("documents:detail", kwargs={"team_slug": team.slug,
                                                          "pk": document.pk})).content.decode()
    assert 'data-testid="doc-language"' in page and ">DE<" in page
