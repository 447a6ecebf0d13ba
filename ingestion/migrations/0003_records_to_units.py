"""Raw records (one row per item) become raw units (one per run and fetch time), with nothing
lost: each unit holds its records as JSON lines ({"location", "payload"}), in their order; each
quote points at its unit and its line in it; each rejected record becomes a Rejection.

`renormalize` replays such a unit by reading the payloads back, as it replays a page or chunk.
"""

import hashlib
import json
import zlib

from django.db import migrations

CHUNK = 2000
TEXT_LIMIT = 2000


def _bounded(text, limit):
    text = text.replace("\x00", "\ufffd")
    if len(text) <= limit:
        return text
    marker = f" [... {len(text):,} characters in all ...] "
    keep = limit - len(marker)
    return text[: keep - keep // 4] + marker + text[len(text) - keep // 4 :]


def records_to_units(apps, schema_editor):
    RawRecord = apps.get_model("ingestion", "RawRecord")
    RawUnit = apps.get_model("ingestion", "RawUnit")
    Rejection = apps.get_model("ingestion", "Rejection")
    Quote = apps.get_model("prices", "Quote")

    groups = (
        RawRecord.objects.order_by("source", "run_id", "fetched_at")
        .values_list("source", "run_id", "fetched_at")
        .distinct()
    )
    for source, run_id, fetched_at in groups.iterator():
        records = list(
            RawRecord.objects.filter(source=source, run_id=run_id, fetched_at=fetched_at)
            .order_by("id")
            .values_list("id", "external_id", "payload", "rejection_reason")
        )
        lines = [
            json.dumps({"location": location, "payload": payload}, ensure_ascii=False)
            for _, location, payload, _ in records
        ]
        data = ("\n".join(lines) + "\n").encode()
        digest = hashlib.sha256(b"records\x1f" + data).hexdigest()
        unit = RawUnit.objects.create(
            source=source,
            run_id=run_id,
            kind="records",
            fetched_at=fetched_at,
            media_type="application/x-ndjson",
            content=zlib.compress(data, 1),
            size=len(data),
            items=len(records),
            content_hash=digest,
        )
        Rejection.objects.bulk_create(
            Rejection(
                source=source,
                run_id=run_id,
                raw_unit=unit,
                location=location,
                reason=reason,
                text=_bounded(line, TEXT_LIMIT),
                created_at=fetched_at,
            )
            for (_, location, _, reason), line in zip(records, lines, strict=True)
            if reason
        )
        position = {record_id: index for index, (record_id, *_) in enumerate(records, start=1)}
        ids = list(position)
        for start in range(0, len(ids), CHUNK):
            quotes = list(
                Quote.objects.filter(raw_record_id__in=ids[start : start + CHUNK]).only(
                    "id", "raw_record_id"
                )
            )
            for quote in quotes:
                quote.raw_unit_id = unit.pk
                quote.raw_position = position[quote.raw_record_id]
            Quote.objects.bulk_update(quotes, ["raw_unit_id", "raw_position"], batch_size=CHUNK)


class Migration(migrations.Migration):
    dependencies = [
        ("ingestion", "0002_raw_units"),
        ("prices", "0004_quote_bars_and_raw_units"),
    ]

    operations = [
        migrations.RunPython(records_to_units, migrations.RunPython.noop, elidable=False),
    ]
