from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('documents', '0003_title_edited'),
    ]

    operations = [
        migrations.AddField(
            model_name='document',
            name='ocr_pages',
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name='document',
            name='unreadable_pages',
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name='document',
            name='language',
            field=models.CharField(blank=True, default='', max_length=16),
        ),
    ]
