"""What must hold before the application serves requests (checked by the WSGI/ASGI entry points)."""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def check_serving_settings() -> None:
    """Refuse to serve with DEBUG off and no SECRET_KEY from the environment: sessions, CSRF
    tokens and password-reset links would be signed with a key that changes every restart."""
    if not settings.DEBUG and not settings.SECRET_KEY_FROM_ENVIRONMENT:
        raise ImproperlyConfigured(
            "SECRET_KEY is required to serve when DEBUG is off. Set SECRET_KEY in the "
            "environment, or set DEBUG=true for local development."
        )
