"""The REST API (Django REST Framework): see ``docs/api.md``."""
