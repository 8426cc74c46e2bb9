from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('writing', '0002_section_written_at'),
    ]

    operations = [
        migrations.AddField(
            model_name='writingproject',
            name='requirements',
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name='section',
            name='serves',
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name='section',
            name='checks',
            field=models.JSONField(blank=True, default=list),
        ),
    ]
