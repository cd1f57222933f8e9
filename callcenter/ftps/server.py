"""The read-only FTPS server admins download CDRs, queue-call zips and recordings from (CDR-4).

pyftpdlib runs in a thread of its own with its own IOLoop, so neither transfers nor the (slow, argon2)
password checks ever run on the controller's asyncio loop. Each session sees a virtual tree: "/" holds
the folders of its :class:`FtpAccount` and nothing else; every path is resolved on disk (symlinks
included) and refused when it lands outside those folders. Explicit TLS (AUTH TLS, then PROT P) is
required for the login and for every data connection.
"""

from __future__ import annotations

import logging
import math
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from OpenSSL import SSL
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.exceptions import AuthenticationFailed, FilesystemError
from pyftpdlib.filesystems import AbstractedFS
from pyftpdlib.handlers import TLS_DTPHandler, TLS_FTPHandler
from pyftpdlib.ioloop import IOLoop
from pyftpdlib.servers import FTPServer

from callcenter.errors import ProvisioningError
from callcenter.ftps.certificate import ensure_certificate as ensure_certificate  # re-exported
from callcenter.ftps.settings import FtpsSettings
from callcenter.users.throttle import LoginThrottle

log = logging.getLogger("callcenter.ftps")

# List, change directory, retrieve: pyftpdlib refuses every other command (550) before it runs.
READ_ONLY_PERMS = "elr"
BANNER = "callcenter FTPS ready"
MAX_CONNECTIONS = 64
MAX_CONNECTIONS_PER_IP = 16
# An idle control connection is dropped after this long; a data connection that moves no byte too.
CONTROL_TIMEOUT = 300
DATA_TIMEOUT = 120
# The 530 after a wrong password comes this late: slows down guessing without holding the thread.
FAILED_LOGIN_DELAY = 3.0
# How often the FTP thread looks at the stop flag: stop() returns within about this long.
_POLL_SECONDS = 0.2


@dataclass(frozen=True)
class FtpAccount:
    """Who logged in and what they see: virtual top-level folder name -> real directory."""

    login: str
    # e.g. {"CDRs": files/CDRs, "QueueCalls": files/QueueCalls, "Recordings": files/Recordings} for the
    # top admin, {"CDRs": files/units/3/CDRs, ...} for a one-unit admin, {"Sales": files/units/3,
    # "Support": files/units/9} for an admin of two units. A missing directory is shown empty.
    roots: Mapping[str, Path]
    # Said in the login reply: why an admin with nothing in scope sees no folder (users/units.py NO_SCOPE).
    notice: str = ""

    def __post_init__(self) -> None:
        for name in self.roots:
            # Such a name would either alias another path or break the line-based listings.
            if name in ("", ".", "..") or any(char in name for char in "/\0\r\n"):
                raise ValueError(f"FTPS folder name {name!r} of {self.login!r} is not a usable file name")


class AccountSource(Protocol):
    def account_key(self, login: str) -> str:
        """The name the login throttle counts this login's failures under: one per account whether
        the admin typed their login or their extension, in any case (``users.services.account_key``)."""
        ...

    def authenticate(self, login: str, password: str) -> FtpAccount | None:
        """The account, or None for a wrong login/password or a user who is not an admin.

        Called in the FTP thread (never on the asyncio loop); it may be slow (argon2, database),
        but while it runs no other FTPS session is served."""
        ...


class _Authorizer(DummyAuthorizer):  # type: ignore[misc]
    """Asks the AccountSource, applies the login throttle, and gives whoever it lets in read-only access."""

    def __init__(self, accounts: AccountSource, throttle: LoginThrottle) -> None:
        super().__init__()
        self._accounts = accounts
        self._throttle = throttle
        # The login reply's text per user name, from the account just validated (get_msg_login gets no
        # handler); pyftpdlib asks for it right after validate_authentication, in the same thread.
        self._notices: dict[str, str] = {}

    def validate_authentication(self, username: str, password: str, handler: _Session) -> None:
        ip = handler.remote_ip
        try:
            key = self._accounts.account_key(username)
            wait = self._throttle.wait_for(ip, key)
            # While a delay runs the password is not even checked, and the attempt is not counted.
            account = None if wait else self._accounts.authenticate(username, password)
        except Exception:
            log.exception("FTPS login %r from %s: the account check failed", username, ip)
            raise AuthenticationFailed("login is not possible at the moment; try again later") from None
        if wait:
            seconds = math.ceil(wait)
            log.warning("FTPS login %r from %s refused: too many failed logins, %d second(s) to wait",
                        username, ip, seconds)
            # pyftpdlib capitalises the first letter and lower-cases the rest of the message.
            raise AuthenticationFailed(
                f"too many failed logins; wait {seconds} second(s) before trying again")
        if account is None:
            self._throttle.failed(ip, key)
            log.warning("FTPS login failed for %r from %s", username, ip)
            raise AuthenticationFailed("authentication failed")
        self._throttle.succeeded(ip, key)
        log.info("FTPS login %r from %s%s", account.login, ip, " (nothing in scope)" if account.notice else "")
        if account.notice:
            self._notices[username] = account.notice
        handler.account = account

    def get_home_dir(self, username: str) -> str:
        return "/"  # virtual: _AccountFS maps it onto the account's folders

    def has_user(self, username: str) -> bool:
        return True

    def has_perm(self, username: str, perm: str, path: str | None = None) -> bool:
        return perm in READ_ONLY_PERMS

    def get_perms(self, username: str) -> str:
        return READ_ONLY_PERMS

    def get_msg_login(self, username: str) -> str:
        notice = self._notices.pop(username, "")
        return f"Logged in (read-only). {notice}" if notice else "Logged in (read-only)."

    def get_msg_quit(self, username: str) -> str:
        return "Goodbye."


# What _AccountFS.ftpnorm() makes of a path that climbs above "/": validpath() refuses it.
_OUTSIDE = "/.."
# Files still being written: the exports' "<name>.tmp", the recordings' ".<name>.part". They get
# their real name only once complete, and admins must not fetch half a file.
_UNFINISHED_SUFFIXES = (".tmp", ".part")


def _unfinished(name: str) -> bool:
    return name.startswith(".") or name.endswith(_UNFINISHED_SUFFIXES)

_READ_ONLY = "Permission denied: this server is read-only"


class _Outside(FilesystemError):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__("Permission denied: outside your folders")


class _AccountFS(AbstractedFS):  # type: ignore[misc]
    """The account's folders as one read-only tree.

    pyftpdlib passes what ftp2fs() returns back into every method here as the "filesystem path".
    These stay virtual ("/CDRs/2024-05-01.csv") and are resolved on disk only in _locate(), which
    checks the result against the folder's real path, so no command reaches a file it did not check.
    """

    def __init__(self, root: str, cmd_channel: _Session) -> None:
        super().__init__("/", cmd_channel)
        account = cmd_channel.account
        if account is None:
            raise FilesystemError("not logged in")
        # Resolved once per session: a folder that is itself a symlink (var on another disk) is fine.
        self._roots = {name: os.path.realpath(path) for name, path in account.roots.items()}
        self._root_dirs = set(self._roots.values())
        moment = time.time()
        self._folder_stat = os.stat_result((stat.S_IFDIR | 0o555, 0, 0, 2, 0, 0, 0, moment, moment, moment))

    # --- paths

    def ftpnorm(self, ftppath: str) -> str:
        # Unlike os.path.normpath, ".." at "/" is an error rather than "/": an attempt to climb out
        # is answered as one.
        parts: list[str] = []
        base = "" if ftppath.startswith("/") else self.cwd
        for part in f"{base}/{ftppath}".split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if not parts:
                    return _OUTSIDE
                parts.pop()
            else:
                parts.append(part)
        return "/" + "/".join(parts)

    def ftp2fs(self, ftppath: str) -> str:
        return self.ftpnorm(ftppath)

    def fs2ftp(self, fspath: str) -> str:
        return fspath

    def realpath(self, path: str) -> str:
        return path  # already canonical; the real path never leaves _locate()

    def validpath(self, path: str) -> bool:
        # False gets the 550 "outside the user's root directory" answer. A name that is not one of the
        # account's folders passes here and fails later as "No such file or directory".
        try:
            self._locate(path)
        except _Outside:
            return False
        except FilesystemError:
            pass
        return True

    def _locate(self, path: str) -> tuple[str, str] | None:
        """(real folder, real path) of a virtual path; None for "/" itself."""
        if path == "/":
            return None
        if path == _OUTSIDE or "\0" in path or not path.startswith("/"):
            raise _Outside()
        name, _, rest = path[1:].partition("/")
        root = self._roots.get(name)
        if root is None or any(_unfinished(part) for part in rest.split("/") if part):
            raise FilesystemError("No such file or directory")
        real = os.path.realpath(os.path.join(root, rest)) if rest else root
        if real != root and os.path.commonpath((root, real)) != root:
            raise _Outside()
        return root, real

    # --- reading

    def stat(self, path: str) -> os.stat_result:
        located = self._locate(path)
        if located is None:
            return self._folder_stat
        _, real = located
        try:
            return os.stat(real)
        except FileNotFoundError:
            if real in self._root_dirs:
                return self._folder_stat  # nothing exported there yet
            raise

    # Listings show a symlink as what it points to, so they never reveal a real path ("x -> /var/...").
    lstat = stat

    def listdir(self, path: str) -> list[str]:
        located = self._locate(path)
        if located is None:
            return sorted(self._roots)
        root, real = located
        try:
            entries = list(os.scandir(real))
        except FileNotFoundError:
            if real in self._root_dirs:
                return []
            raise
        names = []
        for entry in entries:
            if _unfinished(entry.name):
                continue
            if entry.is_symlink():
                target = os.path.realpath(entry.path)
                if os.path.commonpath((root, target)) != root:
                    continue
            names.append(entry.name)
        return names

    listdirinfo = listdir

    def format_mlsx(self, basedir: str, listing: list[str], perms: str, facts: str,
                    ignore_err: bool = True) -> Iterator[bytes]:
        # pyftpdlib writes the unix.mode fact with Python's oct() ("0o644"); clients read it as C
        # octal ("0644"): lftp cannot parse "0o644" and mirrors every file with mode 000.
        for line in super().format_mlsx(basedir, listing, perms, facts, ignore_err):
            # "fact=value;fact=value; name": only the facts before the first space, never the name.
            found, space, name = line.partition(b" ")
            yield b";".join(b"unix.mode=0" + fact[12:] if fact.startswith(b"unix.mode=0o") else fact
                            for fact in found.split(b";")) + space + name

    def open(self, filename: str, mode: str) -> IO[bytes]:
        if mode != "rb":
            raise FilesystemError(_READ_ONLY)
        located = self._locate(filename)
        if located is None:
            raise FilesystemError("Is a directory")
        # A FIFO or device would block the whole FTP thread on open() or read().
        if not stat.S_ISREG(os.stat(located[1]).st_mode):
            raise FilesystemError("Not a regular file")
        return open(located[1], "rb")  # pyftpdlib closes it when the transfer ends

    def chdir(self, path: str) -> None:
        if not stat.S_ISDIR(self.stat(path).st_mode):
            raise FilesystemError("Not a directory")
        self.cwd = path  # never os.chdir(): that would move the whole controller process

    def _is(self, path: str, kind: Callable[[int], bool]) -> bool:
        # pyftpdlib calls these outside its error handling: a refused path is simply "not one".
        try:
            return kind(self.stat(path).st_mode)
        except (OSError, FilesystemError):
            return False

    def isdir(self, path: str) -> bool:
        return self._is(path, stat.S_ISDIR)

    def isfile(self, path: str) -> bool:
        return self._is(path, stat.S_ISREG)

    def islink(self, path: str) -> bool:
        return False

    def lexists(self, path: str) -> bool:
        return self._is(path, lambda mode: True)

    def getsize(self, path: str) -> int:
        return self.stat(path).st_size

    def getmtime(self, path: str) -> float:
        return self.stat(path).st_mtime

    def readlink(self, path: str) -> str:
        raise FilesystemError("Not a symbolic link")

    def get_user_by_uid(self, uid: int) -> str:
        return "callcenter"  # the real owners (asterisk, root...) are nobody's business

    def get_group_by_gid(self, gid: int) -> str:
        return "callcenter"

    # --- writing: refused here too, should a command ever get past the permission check

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise FilesystemError(_READ_ONLY)

    mkdir = rmdir = remove = rename = chmod = utime = mkstemp = _refuse


class _DataChannel(TLS_DTPHandler):  # type: ignore[misc]
    """A data connection that sends nothing, and does not close, before its TLS handshake is over.

    pyftpdlib pushes the data as soon as the client connects. The first send then runs part of the
    handshake inside SSL_write, out of sight of the code that notices its end, and with nothing to
    send (an empty folder, a 0-byte file) it closes the connection at once: the client's handshake
    stalls or ends in "shutdown while in init" (ftplib), randomly. So: handshake first, then data.
    """

    timeout = DATA_TIMEOUT

    def __init__(self, sock: Any, cmd_channel: _Session) -> None:
        self._deferred: list[tuple[Callable[..., None], tuple[Any, ...]]] = []
        super().__init__(sock, cmd_channel)

    def push(self, data: bytes) -> None:
        self._when_secured(super().push, data)

    def push_with_producer(self, producer: Any) -> None:
        self._when_secured(super().push_with_producer, producer)

    def close_when_done(self) -> None:
        self._when_secured(super().close_when_done)

    def _when_secured(self, action: Callable[..., None], *args: Any) -> None:
        if self._ssl_requested and not self._ssl_established:
            self._initialized = True  # else pyftpdlib takes the quiet channel for a stray one and drops it
            self._deferred.append((action, args))
        else:
            action(*args)

    def handle_ssl_established(self) -> None:
        super().handle_ssl_established()
        deferred, self._deferred = self._deferred, []
        for action, args in deferred:
            action(*args)


class _Session(TLS_FTPHandler):  # type: ignore[misc]
    """One control connection. FtpsServer subclasses it per server with the TLS context and limits."""

    tls_control_required = True
    tls_data_required = True
    banner = BANNER
    timeout = CONTROL_TIMEOUT
    dtp_handler = _DataChannel
    abstracted_fs = _AccountFS
    account: FtpAccount | None = None
    _download = ""
    _resumed_at = 0

    def flush_account(self) -> None:
        super().flush_account()
        self.account = None

    def ftp_RETR(self, file: str) -> str | None:
        self._download, self._resumed_at = file, self._restart_position
        result: str | None = super().ftp_RETR(file)
        return result

    def log_transfer(self, cmd: str, filename: str, receive: bool, completed: bool, elapsed: float,
                     bytes: int) -> None:
        # pyftpdlib's own line names the real path; ours names the path the admin asked for.
        if cmd == "RETR":
            login = self.account.login if self.account else self.username
            resumed = f" from byte {self._resumed_at}" if self._resumed_at else ""
            log.info("FTPS download %s by %r from %s: %s, %d bytes%s in %.2f s", self._download, login,
                     self.remote_ip, "complete" if completed else "interrupted", bytes, resumed, elapsed)


class FtpsServer:
    """The FTPS server: start() binds and serves from a daemon thread, stop() ends it."""

    def __init__(self, settings: FtpsSettings, var_dir: Path, accounts: AccountSource, throttle: LoginThrottle, *,
                 failed_login_delay: float = FAILED_LOGIN_DELAY) -> None:
        """``throttle`` is the composition root's, shared with the panel, so that guesses there and
        here add up; tests pass one on a fake clock and a short ``failed_login_delay``."""
        self._settings = settings
        self._var_dir = var_dir
        self._authorizer = _Authorizer(accounts, throttle)
        self._failed_login_delay = failed_login_delay
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._port = 0

    @property
    def port(self) -> int:
        if self._thread is None:
            raise RuntimeError("the FTPS server is not started")
        return self._port

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the FTPS server is already started")
        settings = self._settings
        passive_ports = _passive_ports(settings.passive_ports)
        certificate, private_key = ensure_certificate(settings, self._var_dir)
        context = _tls_context(certificate, private_key)
        _quiet_pyftpdlib()

        class Session(_Session):
            pass

        Session.ssl_context = context
        Session.authorizer = self._authorizer
        Session.passive_ports = passive_ports
        Session.masquerade_address = settings.masquerade_address or None
        Session.auth_failed_timeout = self._failed_login_delay

        ioloop = IOLoop()
        try:
            server = FTPServer((settings.bind, settings.port), Session, ioloop=ioloop)
        except OSError as err:
            ioloop.close()
            raise ProvisioningError(
                f"FTPS cannot listen on {settings.bind}:{settings.port}: {err.strerror or err} "
                "(another program on that port? change ftps.port)") from err
        server.max_cons = MAX_CONNECTIONS
        server.max_cons_per_ip = MAX_CONNECTIONS_PER_IP
        self._port = server.address[1]
        self._stopping.clear()
        self._thread = threading.Thread(target=self._serve, args=(server,), name="ftps", daemon=True)
        self._thread.start()
        log.info("FTPS listening on %s:%d, passive ports %d-%d%s", settings.bind, self._port, passive_ports[0],
                 passive_ports[-1], f", announced as {settings.masquerade_address}"
                 if settings.masquerade_address else "")

    def stop(self) -> None:
        thread = self._thread
        if thread is None:
            return
        self._stopping.set()
        thread.join(timeout=5)
        if thread.is_alive():
            log.warning("the FTPS thread did not stop within 5 s")
        self._thread = None
        log.info("FTPS stopped")

    def _serve(self, server: FTPServer) -> None:
        # Every pyftpdlib object is used from this thread only; stop() just raises the flag.
        ioloop = server.ioloop
        wait = _POLL_SECONDS
        try:
            while not self._stopping.is_set():
                if not ioloop.socket_map:  # the listening socket failed and closed: loop() would spin
                    log.error("the FTPS listening socket closed after an error; FTPS no longer serves")
                    break
                soonest = ioloop.loop(timeout=wait, blocking=False)
                wait = _POLL_SECONDS if soonest is None else max(0.0, min(_POLL_SECONDS, soonest))
        except Exception:
            log.exception("the FTPS server failed and no longer serves")
        finally:
            server.close_all()


def _passive_ports(spec: str) -> list[int]:
    first, _, last = spec.partition("-")
    try:
        low, high = int(first), int(last)
    except ValueError:
        low = high = 0
    if not 1 <= low <= high <= 65535:
        raise ProvisioningError(f"ftps.passive_ports {spec!r}: expected first-last, 1-65535, first <= last")
    return list(range(low, high + 1))


def _quiet_pyftpdlib() -> None:
    # pyftpdlib logs every connection and command at INFO and, when the "pyftpdlib" logger has no
    # handler, installs its own on stderr. Our lines (logins, locks, downloads) are the ones admins
    # need; its warnings and errors still reach the root handlers.
    library = logging.getLogger("pyftpdlib")
    if not library.handlers:
        library.addHandler(logging.NullHandler())
    if library.level == logging.NOTSET:
        library.setLevel(logging.WARNING)


def _tls_context(certificate: Path, private_key: Path) -> SSL.Context:
    context = SSL.Context(SSL.TLS_SERVER_METHOD)
    context.set_min_proto_version(SSL.TLS1_2_VERSION)
    context.set_options(SSL.OP_NO_COMPRESSION | SSL.OP_CIPHER_SERVER_PREFERENCE
                        | getattr(SSL, "OP_NO_RENEGOTIATION", 0))
    # Lets a client resume the control connection's TLS session on each data connection instead of
    # a full handshake per transfer (FileZilla, lftp and curl try to).
    context.set_session_id(b"callcenter-ftps")
    try:
        context.use_certificate_chain_file(str(certificate))
        context.use_privatekey_file(str(private_key))
        context.check_privatekey()
    except SSL.Error as err:
        raise ProvisioningError(f"FTPS certificate {certificate} with key {private_key} is unusable: {err}") from err
    return context
