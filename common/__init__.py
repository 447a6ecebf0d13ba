"""What every app shares and none owns; it imports no app, so prices, runs and ingestion may all
use it.

- `filters`: strict query parsing for the APIs' FilterSets (a bad value is a 400, never "no
  filter") and the keyset ordering.
- `pagination`: keyset (cursor) pagination for any list ordered by one field and the id.
- `middleware`: the request id and the time a request took.
- `logs`: the context on every log line (request, run, source) and the one redaction of
  secrets.
- `display`, `console_tags`: how the console shows numbers, durations and statuses.
"""
