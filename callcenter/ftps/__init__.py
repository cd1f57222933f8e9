"""FTPS for admins (CDR-4): read-only, explicit-TLS downloads of CDRs, queue-call zips and recordings.

The server runs pyftpdlib in its own thread; an :class:`AccountSource` (the composition root's, backed
by the user database) decides who may log in and which folders they see. See docs/ftps.md.
"""

from callcenter.ftps.server import AccountSource, FtpAccount, FtpsServer, ensure_certificate

__all__ = ["AccountSource", "FtpAccount", "FtpsServer", "ensure_certificate"]
