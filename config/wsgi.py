"""WSGI entry point used by gunicorn."""

import os

from django.core.wsgi import get_wsgi_application

from config.serving import check_serving_settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_wsgi_application()
check_serving_settings()
