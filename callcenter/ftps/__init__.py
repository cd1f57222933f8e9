"""FTPS for admins (CDR-4): read-only, explicit-TLS downloads of CDRs, queue-call zips and recordings.

The server (``callcenter.ftps.server``) runs pyftpdlib in its own thread; an ``AccountSource`` (the
composition root's, backed by the user database) decides who may log in and which folders they see.
See docs/ftps.md. Kept free of imports so that reading the settings (``ftps.settings``) does not load
pyftpdlib and OpenSSL.
"""
