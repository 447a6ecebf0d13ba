"""What was received, kept as received: one row per unit fetched, and one per rejected item."""

from __future__ import annotations

import zlib
from typing import Any

from django.db import models


class RawUnit(models.Model):
    """One unit fetched, stored once, verbatim: an API response page or a chunk of a CSV file.

    `content` holds the exact bytes received, zlib-compressed. `content_hash` covers those bytes
    and what is needed to read them again (`context`), so the same page or chunk seen again is
    recognised and stored once per source; its items are still loaded each time they arrive.
    """

    class Kind(models.TextChoices):
        PAGE = "page", "API response page"
        CHUNK = "chunk", "CSV file chunk"
        # Rows written by the per-record store this table replaced, grouped by run and fetch.
        RECORDS = "records", "records (migrated)"

    source = models.CharField(max_length=32)
    run = models.ForeignKey(
        "runs.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="raw_units"
    )
    kind = models.CharField(max_length=8, choices=Kind.choices)
    fetched_at = models.DateTimeField()
    # A page: the request (URL without any key, and its parameters). A chunk: the file.
    url = models.TextField(blank=True)
    file_name = models.TextField(blank=True)
    byte_start = models.PositiveBigIntegerField(null=True, blank=True)
    byte_end = models.PositiveBigIntegerField(null=True, blank=True)
    line_start = models.PositiveBigIntegerField(null=True, blank=True)
    line_end = models.PositiveBigIntegerField(null=True, blank=True)
    # How to read `content` again: a CSV chunk's layout, header and symbol; a page's time.
    context = models.JSONField(default=dict, blank=True)
    media_type = models.CharField(max_length=64)
    content = models.BinaryField()
    size = models.PositiveBigIntegerField(help_text="Bytes received, before compression.")
    items = models.PositiveIntegerField(default=0, help_text="Items read from it.")
    content_hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["-fetched_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "content_hash"], name="ingestion_rawunit_unique_content"
            ),
        ]
        indexes = [
            # The admin's list, newest first per source; retention's age cut.
            models.Index(fields=["source", "-fetched_at"], name="ingestion_rawunit_src_time"),
            models.Index(fields=["fetched_at"], name="ingestion_rawunit_fetched"),
        ]

    def __str__(self) -> str:
        return f"{self.source} {self.kind} {self.pk}"

    @property
    def origin(self) -> str:
        """Where it came from, in one line."""
        if self.kind == self.Kind.CHUNK:
            return f"{self.file_name} lines {self.line_start}-{self.line_end}"
        return self.url or f"run {self.run_id}"

    def data(self) -> bytes:
        """The bytes as received."""
        return zlib.decompress(bytes(self.content))


def compress(data: bytes) -> bytes:
    # Level 1: most of the size gain for a fraction of the time of the default level.
    return zlib.compress(data, 1)


class Rejection(models.Model):
    """One item that could not be loaded, with where it was and why."""

    source = models.CharField(max_length=32)
    run = models.ForeignKey(
        "runs.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="rejections"
    )
    raw_unit = models.ForeignKey(
        RawUnit, null=True, blank=True, on_delete=models.SET_NULL, related_name="rejections"
    )
    location = models.CharField(
        max_length=255, help_text="File and line, or the provider id (and place in the page)."
    )
    reason = models.TextField()
    text = models.TextField(blank=True, help_text="The item as received, cut to 2,000 characters.")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The admin's list, filtered by source, newest first.
            models.Index(fields=["source", "-created_at"], name="ingestion_rejection_src_time"),
        ]

    def __str__(self) -> str:
        return f"{self.source}:{self.location}"


def bounded_text(value: Any, limit: int) -> str:
    """`value` as text, cut to `limit` characters with its head and tail and its full length."""
    text = value if isinstance(value, str) else str(value)
    text = text.replace("\x00", "\ufffd")
    if len(text) <= limit:
        return text
    marker = f" [... {len(text):,} characters in all ...] "
    keep = max(limit - len(marker), 0)
    return text[: keep - keep // 4] + marker + text[len(text) - keep // 4 :]
