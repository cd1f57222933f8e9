"""The read-only FTPS server admins download CDRs, queue-call zips and recordings from (CDR-4).

pyftpdlib runs in a thread of its own with its own IOLoop, so neither transfers nor the (slow, argon2)
password checks ever run on the controller's asyncio loop. Each session sees a virtual tree: "/" holds
the folders of its :class:`FtpAccount` and nothing else; every path is resolved on disk (symlinks
included) and refused when it lands outside those folders. Explicit TLS (AUTH TLS, then PROT P) is
required for the login and for every data connection.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import math
import os
import stat
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from OpenSSL import SSL
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.exceptions import AuthenticationFailed, FilesystemError
from pyftpdlib.filesystems import AbstractedFS
from pyftpdlib.handlers import TLS_DTPHandler, TLS_FTPHandler
from pyftpdlib.ioloop import IOLoop
from pyftpdlib.servers import FTPServer

from callcenter.config import FtpsSettings
from callcenter.errors import ProvisioningError

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
CERTIFICATE_DAYS = 3650


@dataclass(frozen=True)
class FtpAccount:
    """Who logged in and what they see: virtual top-level folder name -> real directory."""

    login: str
    # e.g. {"CDRs": files/CDRs, "QueueCalls": files/QueueCalls, "Recordings": files/Recordings} for the
    # top admin, {"CDRs": files/units/3/CDRs, ...} for a one-unit admin, {"Sales": files/units/3,
    # "Support": files/units/9} for an admin of two units. A missing directory is shown empty.
    roots: Mapping[str, Path]

    def __post_init__(self) -> None:
        for name in self.roots:
            # Such a name would either alias another path or break the line-based listings.
            if name in ("", ".", "..") or any(char in name for char in "/\0\r\n"):
                raise ValueError(f"FTPS folder name {name!r} of {self.login!r} is not a usable file name")


class AccountSource(Protocol):
    def authenticate(self, login: str, password: str) -> FtpAccount | None:
        """The account, or None for a wrong login/password or a user who is not an admin.

        Called in the FTP thread (never on the asyncio loop); it may be slow (argon2, database),
        but while it runs no other FTPS session is served."""
        ...


class LoginThrottle:
    """Locks a login name after ``max_failures`` failed logins in a row, for ``lockout_seconds``.

    Failures further apart than the lockout period do not add up. Unknown names are counted like
    known ones, so the answers do not tell which logins exist. Thread-safe; in memory only.
    """

    # Bounds memory when someone sprays random login names.
    MAX_TRACKED = 10_000

    def __init__(self, max_failures: int, lockout_seconds: float, clock: Callable[[], float]) -> None:
        self._max_failures = max_failures
        self._lockout = lockout_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, tuple[int, float]] = {}  # key -> (failures in a row, time of the last)
        self._locked_until: dict[str, float] = {}

    @staticmethod
    def _key(login: str) -> str:
        # The account source may match logins case-insensitively: "Admin" must not get a fresh count.
        return login.casefold()

    def locked_for(self, login: str) -> float:
        """Seconds the login stays locked; 0 when it is not locked."""
        key = self._key(login)
        with self._lock:
            until = self._locked_until.get(key)
            if until is None:
                return 0.0
            remaining = until - self._clock()
            if remaining > 0:
                return remaining
            del self._locked_until[key]
            return 0.0

    def failed(self, login: str) -> bool:
        """Counts a failed login; True when this failure locks the login."""
        key = self._key(login)
        now = self._clock()
        with self._lock:
            count, last = self._failures.get(key, (0, now))
            count = count + 1 if now - last <= self._lockout else 1
            if count >= self._max_failures:
                self._failures.pop(key, None)
                self._locked_until[key] = now + self._lockout
                return True
            self._failures[key] = (count, now)
            if len(self._failures) > self.MAX_TRACKED:
                self._forget_old(now)
            return False

    def succeeded(self, login: str) -> None:
        with self._lock:
            self._failures.pop(self._key(login), None)

    def _forget_old(self, now: float) -> None:
        self._failures = {key: entry for key, entry in self._failures.items() if now - entry[1] <= self._lockout}
        if len(self._failures) > self.MAX_TRACKED:
            self._failures.clear()  # a spray of names within one lockout period: counts restart
        self._locked_until = {key: until for key, until in self._locked_until.items() if until > now}


class _Authorizer(DummyAuthorizer):  # type: ignore[misc]
    """Asks the AccountSource, applies the lockout, and gives whoever it lets in read-only access."""

    def __init__(self, accounts: AccountSource, throttle: LoginThrottle) -> None:
        super().__init__()
        self._accounts = accounts
        self._throttle = throttle

    def validate_authentication(self, username: str, password: str, handler: _Session) -> None:
        ip = handler.remote_ip
        remaining = self._throttle.locked_for(username)
        if remaining:
            minutes = math.ceil(remaining / 60)
            log.warning("FTPS login %r from %s refused: locked for %d more minute(s)", username, ip, minutes)
            # pyftpdlib capitalises the first letter and lower-cases the rest of the message.
            raise AuthenticationFailed(
                f"login locked after too many failed attempts; try again in {minutes} minute(s)")
        try:
            account = self._accounts.authenticate(username, password)
        except Exception:
            log.exception("FTPS login %r from %s: the account check failed", username, ip)
            raise AuthenticationFailed("login is not possible at the moment; try again later") from None
        if account is None:
            log.warning("FTPS login failed for %r from %s", username, ip)
            if self._throttle.failed(username):
                minutes = math.ceil(self._throttle.locked_for(username) / 60)
                log.warning("FTPS login %r locked for %d minute(s) after too many failed attempts (the last from %s)",
                            username, minutes, ip)
                raise AuthenticationFailed(f"authentication failed; login locked for {minutes} minute(s)")
            raise AuthenticationFailed("authentication failed")
        self._throttle.succeeded(username)
        log.info("FTPS login %r from %s", account.login, ip)
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
        return "Logged in (read-only)."

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

    def __init__(self, settings: FtpsSettings, var_dir: Path, accounts: AccountSource, *,
                 clock: Callable[[], float] = time.monotonic,
                 failed_login_delay: float = FAILED_LOGIN_DELAY) -> None:
        """``clock`` (monotonic seconds) times the lockout; tests pass a fake one and a short
        ``failed_login_delay``."""
        self._settings = settings
        self._var_dir = var_dir
        self._throttle = LoginThrottle(settings.max_failures, settings.lockout_minutes * 60, clock)
        self._authorizer = _Authorizer(accounts, self._throttle)
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


def ensure_certificate(settings: FtpsSettings, var_dir: Path) -> tuple[Path, Path]:
    """The configured certificate and key, or a self-signed pair generated once under var_dir/ftps/.

    A configured file that is missing or unreadable is an error naming it. A generated certificate
    is reused on every start until it is about to expire (or is deleted: then a new one is made)."""
    if settings.certificate or settings.private_key:
        if not settings.certificate:
            raise ProvisioningError("ftps.private_key is set but ftps.certificate is empty: set both "
                                    "(or only ftps.certificate for a PEM holding both), or neither")
        certificate = Path(settings.certificate).expanduser()
        private_key = Path(settings.private_key).expanduser() if settings.private_key else certificate
        _check_readable("ftps.certificate", certificate)
        _check_readable("ftps.private_key", private_key)
        return certificate, private_key
    folder = var_dir / "ftps"
    certificate, private_key = folder / "cert.pem", folder / "key.pem"
    if private_key.is_file() and _usable_until(certificate) > dt.datetime.now(dt.UTC) + dt.timedelta(days=1):
        return certificate, private_key
    _generate_certificate(settings, folder, certificate, private_key)
    return certificate, private_key


def _check_readable(setting: str, path: Path) -> None:
    try:
        with path.open("rb") as handle:
            handle.read(1)
    except OSError as err:
        raise ProvisioningError(f"{setting} = {str(path)!r}: {err.strerror or err}") from err


def _usable_until(certificate: Path) -> dt.datetime:
    try:
        return x509.load_pem_x509_certificate(certificate.read_bytes()).not_valid_after_utc
    except (OSError, ValueError):
        return dt.datetime.min.replace(tzinfo=dt.UTC)


def _generate_certificate(settings: FtpsSettings, folder: Path, certificate: Path, private_key: Path) -> None:
    names: list[x509.GeneralName] = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    # Also the addresses clients are told to use, so a client that checks names can pin this one.
    for address in (settings.bind, settings.masquerade_address):
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            entry: x509.GeneralName | None = x509.DNSName(address) if address else None
        else:
            entry = None if ip.is_unspecified else x509.IPAddress(ip)
        if entry is not None and entry not in names:
            names.append(entry)
    specific = settings.bind and settings.bind not in ("0.0.0.0", "::")
    common_name = settings.bind if specific else "callcenter"
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "callcenter FTPS")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))  # tolerates a client clock a little behind
        .not_valid_after(now + dt.timedelta(days=CERTIFICATE_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    _write_atomically(private_key, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()), 0o600)
    _write_atomically(certificate, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    fingerprint = cert.fingerprint(hashes.SHA256()).hex(":").upper()
    log.info("FTPS: generated a self-signed certificate %s, valid until %s, SHA-256 fingerprint %s "
             "(admins compare it with what their client shows on the first connection)",
             certificate, cert.not_valid_after_utc.date(), fingerprint)


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    # The key never exists with looser permissions, not even half-written.
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    os.fchmod(descriptor, mode)  # a .tmp left behind by a crash kept its old mode
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    os.replace(temporary, path)
