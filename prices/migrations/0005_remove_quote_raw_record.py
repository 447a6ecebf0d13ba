from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("ingestion", "0003_records_to_units"),
        ("prices", "0004_quote_bars_and_raw_units"),
    ]

    operations = [
        migrations.RemoveField(model_name="quote", name="raw_record"),
    ]
