import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("ingestion", "0002_raw_units"),
        ("prices", "0003_identifier_method_reference_symbol"),
        ("runs", "0002_run_kind"),
    ]

    operations = [
        migrations.AddField(
            model_name="quote",
            name="open_usd",
            field=models.DecimalField(blank=True, decimal_places=18, max_digits=40, null=True),
        ),
        migrations.AddField(
            model_name="quote",
            name="high_usd",
            field=models.DecimalField(blank=True, decimal_places=18, max_digits=40, null=True),
        ),
        migrations.AddField(
            model_name="quote",
            name="low_usd",
            field=models.DecimalField(blank=True, decimal_places=18, max_digits=40, null=True),
        ),
        migrations.AddField(
            model_name="quote",
            name="interval",
            field=models.CharField(blank=True, help_text="The bar's length (1d, 1h...); empty for a snapshot.", max_length=8),
        ),
        migrations.AddField(
            model_name="quote",
            name="raw_unit",
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name="+", to="ingestion.rawunit"),
        ),
        migrations.AddField(
            model_name="quote",
            name="raw_position",
            field=models.PositiveIntegerField(blank=True, help_text="The item's place in its raw unit: file line or index.", null=True),
        ),
        migrations.AlterField(
            model_name="quote",
            name="run",
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name="+", to="runs.run"),
        ),
        migrations.RemoveConstraint(model_name="quote", name="prices_quote_unique_observation"),
        migrations.RemoveIndex(model_name="quote", name="prices_quote_asset_time"),
        migrations.AddConstraint(
            model_name="quote",
            constraint=models.UniqueConstraint(fields=("asset", "observed_at", "source"), name="prices_quote_unique_observation"),
        ),
    ]
