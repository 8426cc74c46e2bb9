"""Full text in the document's language (#20.5): each chunk records the text-search
configuration it was indexed with, and the vector is set at insert instead of generated
from the text with "english".

Existing rows keep their vectors (``DROP EXPRESSION`` turns the generated column into a plain
one with the values it holds) and are marked "english", what they were indexed with.
"""

import django.contrib.postgres.search
from django.db import migrations, models

_PLAIN = """
ALTER TABLE documents_chunk ALTER COLUMN search DROP EXPRESSION;
ALTER TABLE documents_chunk ALTER COLUMN search SET NOT NULL;
"""
_GENERATED = """
DROP INDEX IF EXISTS chunk_search_gin;
ALTER TABLE documents_chunk DROP COLUMN search;
ALTER TABLE documents_chunk ADD COLUMN search tsvector
    GENERATED ALWAYS AS (to_tsvector('english'::regconfig, COALESCE(text, ''))) STORED;
CREATE INDEX chunk_search_gin ON documents_chunk USING gin (search);
"""


class Migration(migrations.Migration):

    dependencies = [
        ("documents", "0004_ocr_pages_language"),
    ]

    operations = [
        migrations.AddField(
            model_name="chunk",
            name="search_config",
            field=models.CharField(default="english", max_length=20),
        ),
        migrations.AlterField(
            model_name="chunk",
            name="search_config",
            field=models.CharField(default="simple", max_length=20),
        ),
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(_PLAIN, reverse_sql=_GENERATED)],
            state_operations=[
                migrations.AlterField(
                    model_name="chunk",
                    name="search",
                    field=django.contrib.postgres.search.SearchVectorField(),
                ),
            ],
        ),
    ]
