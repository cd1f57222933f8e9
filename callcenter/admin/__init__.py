"""The admin pages' domain side: recordings and CDR searches limited to an admin's scope, retention
settings and organisational units (backend.py implements web/backend.py's ``AdminBackend``)."""
