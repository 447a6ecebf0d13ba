import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("ingestion", "0001_initial"),
        ("runs", "0002_run_kind"),
    ]

    operations = [
        migrations.CreateModel(
            name="RawUnit",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("source", models.CharField(max_length=32)),
                ("kind", models.CharField(choices=[("page", "API response page"), ("chunk", "CSV file chunk"), ("records", "records (migrated)")], max_length=8)),
                ("fetched_at", models.DateTimeField()),
                ("url", models.TextField(blank=True)),
                ("file_name", models.TextField(blank=True)),
                ("byte_start", models.PositiveBigIntegerField(blank=True, null=True)),
                ("byte_end", models.PositiveBigIntegerField(blank=True, null=True)),
                ("line_start", models.PositiveBigIntegerField(blank=True, null=True)),
                ("line_end", models.PositiveBigIntegerField(blank=True, null=True)),
                ("context", models.JSONField(blank=True, default=dict)),
                ("media_type", models.CharField(max_length=64)),
                ("content", models.BinaryField()),
                ("size", models.PositiveBigIntegerField(help_text="Bytes received, before compression.")),
                ("items", models.PositiveIntegerField(default=0, help_text="Items read from it.")),
                ("content_hash", models.CharField(max_length=64)),
                ("run", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="raw_units", to="runs.run")),
            ],
            options={
                "ordering": ["-fetched_at", "-id"],
                "indexes": [
                    models.Index(fields=["source", "-fetched_at"], name="ingestion_rawunit_src_time"),
                    models.Index(fields=["fetched_at"], name="ingestion_rawunit_fetched"),
                ],
                "constraints": [
                    models.UniqueConstraint(fields=("source", "content_hash"), name="ingestion_rawunit_unique_content"),
                ],
            },
        ),
        migrations.CreateModel(
            name="Rejection",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("source", models.CharField(max_length=32)),
                ("location", models.CharField(help_text="File and line, or the provider id (and place in the page).", max_length=255)),
                ("reason", models.TextField()),
                ("text", models.TextField(blank=True, help_text="The item as received, cut to 2,000 characters.")),
                ("created_at", models.DateTimeField()),
                ("raw_unit", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="rejections", to="ingestion.rawunit")),
                ("run", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="rejections", to="runs.run")),
            ],
            options={
                "ordering": ["-created_at", "-id"],
                "indexes": [models.Index(fields=["source", "-created_at"], name="ingestion_rejection_src_time")],
            },
        ),
    ]
