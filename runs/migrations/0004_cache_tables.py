"""The tables of the configured database caches (the API's rate-limit counters).

Before this migration only `manage.py createcachetable` made them, so `migrate` alone left every
API request failing on the missing table. It lives in `runs`, the lowest app, so any `migrate`
makes it; it depends on no model. Django's own command does the work: it creates the table of
every `DatabaseCache` in settings.CACHES and leaves one that already exists alone. With
CACHE_URL naming Redis there is nothing to create; switching to the database cache later
needs `manage.py createcachetable` once.
"""

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.db import BaseDatabaseCache
from django.core.management import call_command
from django.db import migrations, router


def create_cache_tables(apps, schema_editor):
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


def drop_cache_tables(apps, schema_editor):
    alias = schema_editor.connection.alias
    for name in settings.CACHES:
        cache = caches[name]
        if isinstance(cache, BaseDatabaseCache) and router.allow_migrate_model(
            alias, cache.cache_model_class
        ):
            schema_editor.execute(f"DROP TABLE IF EXISTS {schema_editor.quote_name(cache._table)}")


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0003_run_session_pid"),
    ]

    operations = [
        migrations.RunPython(create_cache_tables, drop_cache_tables, elidable=False),
    ]
