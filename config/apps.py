from django.contrib.admin.apps import AdminConfig


class ConsoleAdminConfig(AdminConfig):
    """django.contrib.admin with the console's site (the dashboard) as the default site."""

    default_site = "config.admin.ConsoleAdminSite"
