from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("ingestion", "0003_records_to_units"),
        ("prices", "0005_remove_quote_raw_record"),
    ]

    operations = [
        migrations.DeleteModel(name="RawRecord"),
    ]
