"""The admins' FTPS server (CDR-4), driven by real clients: Python's ftplib, curl, lftp and openssl.

One server on free ports serves a temporary tree to a fake account source; its login throttle runs on
a fake clock, which the tests move forward.
"""

from __future__ import annotations

import ftplib
import hashlib
import io
import logging
import os
import random
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from callcenter.db.engine import Database
from callcenter.errors import ProvisioningError
from callcenter.ftps.accounts import AdminAccounts
from callcenter.ftps.server import FtpAccount, FtpsServer, ensure_certificate
from callcenter.ftps.settings import FtpsSettings
from callcenter.users.services import add_user, find_user
from callcenter.users.throttle import FORGET_AFTER, LoginThrottle
from tests.support.sipp import free_tcp_port
from tests.support.system import free_port_range

PASSWORD = "s3cret-Pw"
FOLDERS = ("CDRs", "QueueCalls", "Recordings")
ODD_NAME = 'Büro "Q1", Köln.csv'  # a comma, a double quote and non-ASCII letters


def _free_port_range(size: int) -> str:
    first = free_port_range(size)
    return f"{first}-{first + size - 1}"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: apt-get install {name} (the FTPS tests drive the real client)")
    return path


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Tree:
    files: Path
    var: Path
    zip_bytes: bytes
    top_csv: bytes
    unit_csv: bytes


class Accounts:
    """The AccountSource the controller would back with the user database."""

    def __init__(self, files: Path) -> None:
        self.files = files
        self.checked: list[str] = []

    def account_key(self, login: str) -> str:
        return login.casefold()

    def authenticate(self, login: str, password: str) -> FtpAccount | None:
        self.checked.append(login)
        if password != PASSWORD:
            return None
        unit1, unit2 = self.files / "units" / "1", self.files / "units" / "2"
        roots: dict[str, dict[str, Path]] = {
            "top": {name: self.files / name for name in FOLDERS},
            "lockme": {name: self.files / name for name in FOLDERS},
            "unitadm": {name: unit1 / name for name in FOLDERS},
            "twounits": {"Sales": unit1, "Support": unit2},
            "nounit": {},
        }
        if login not in roots:
            return None
        return FtpAccount(login, roots[login], "You manage no organisational unit." if login == "nounit" else "")


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Tree:
    base = tmp_path_factory.mktemp("ftps")
    files = base / "files"
    (files / "CDRs").mkdir(parents=True)
    (files / "QueueCalls").mkdir()
    # files/Recordings does not exist yet: it is shown as an empty folder.
    top_csv = b"uniqueid,src,dst\r\n1700000000.1,2001,2002\r\n"
    (files / "CDRs" / "2024-05-01.csv").write_bytes(top_csv)
    (files / "CDRs" / ODD_NAME).write_bytes("ä,ö\r\n".encode())
    zip_bytes = random.Random(4).randbytes(1024 * 1024)
    (files / "QueueCalls" / "2024-05-01-queue-calls.zip").write_bytes(zip_bytes)
    # Still being written (the export's and the recorder's temporary names): neither listed nor served.
    (files / "QueueCalls" / "2024-05-02-queue-calls.zip.tmp").write_bytes(b"PK half")
    (files / "CDRs" / ".hidden").mkdir()
    (files / "CDRs" / ".hidden" / "x.csv").write_bytes(b"x")
    unit1 = files / "units" / "1"
    for name in FOLDERS:
        (unit1 / name).mkdir(parents=True)
    unit_csv = b"uniqueid,src,dst\r\n1700000000.7,3001,3002\r\n"
    (unit1 / "CDRs" / "2024-05-01.csv").write_bytes(unit_csv)
    (unit1 / "Recordings" / "2024-05-01").mkdir()
    (unit1 / "Recordings" / "2024-05-01" / "call.mp3").write_bytes(b"ID3" + bytes(100))
    (unit1 / "Recordings" / "2024-05-01" / ".next.mp3.part").write_bytes(b"ID3")
    # Symlinks out of the unit's folder: neither listed nor served.
    (unit1 / "CDRs" / "escape.csv").symlink_to(files / "CDRs" / "2024-05-01.csv")
    (unit1 / "CDRs" / "etc").symlink_to("/etc")
    (files / "units" / "2" / "CDRs").mkdir(parents=True)
    (files / "units" / "2" / "CDRs" / "2024-05-02.csv").write_bytes(b"unit 2\r\n")
    (files / "units" / "2" / "QueueCalls").mkdir()
    (files / "units" / "2" / "Recordings").mkdir()
    (files / "units" / "2" / "QueueCalls" / "empty.zip").write_bytes(b"")
    return Tree(files, base / "var", zip_bytes, top_csv, unit_csv)


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="module")
def throttle(clock: FakeClock) -> LoginThrottle:
    return LoginThrottle(clock=clock)


@pytest.fixture(scope="module")
def accounts(tree: Tree) -> Accounts:
    return Accounts(tree.files)


@pytest.fixture(scope="module")
def server(tree: Tree, accounts: Accounts, throttle: LoginThrottle) -> Iterator[FtpsServer]:
    settings = FtpsSettings(port=free_tcp_port(), passive_ports=_free_port_range(10))
    ftps = FtpsServer(settings, tree.var, accounts, throttle, failed_login_delay=0.05)
    ftps.start()
    yield ftps
    ftps.stop()


def _context(tree: Tree) -> ssl.SSLContext:
    # The generated certificate names 127.0.0.1: clients can pin it and check the name.
    return ssl.create_default_context(cafile=str(tree.var / "ftps" / "cert.pem"))


def _connect(server: FtpsServer, tree: Tree, login: str = "top", password: str = PASSWORD, *,
             protect: bool = True) -> ftplib.FTP_TLS:
    client = ftplib.FTP_TLS(context=_context(tree), timeout=10)
    client.connect("127.0.0.1", server.port)
    client.login(login, password)
    if protect:
        client.prot_p()
    return client


def _download(client: ftplib.FTP, path: str, rest: int | None = None) -> bytes:
    chunks: list[bytes] = []
    client.retrbinary(f"RETR {path}", chunks.append, rest=rest)
    return b"".join(chunks)


def _snapshot(root: Path) -> dict[str, tuple[int, float]]:
    return {str(path): (path.lstat().st_size, path.lstat().st_mtime) for path in sorted(root.rglob("*"))}


def test_top_admin_lists_and_downloads_everything(server: FtpsServer, tree: Tree) -> None:
    with _connect(server, tree) as client:
        assert client.sock.version() in ("TLSv1.2", "TLSv1.3")  # type: ignore[union-attr]
        assert client.nlst() == list(FOLDERS)
        assert sorted(name for name, facts in client.mlsd("/") if facts["type"] == "dir") == list(FOLDERS)
        assert client.nlst("/Recordings") == []  # not created yet: shown empty
        assert sorted(client.nlst("CDRs")) == ["2024-05-01.csv", ODD_NAME]
        lines: list[str] = []
        client.dir("/QueueCalls", lines.append)
        assert len(lines) == 1 and lines[0].endswith(" 2024-05-01-queue-calls.zip")
        assert f" {1024 * 1024} " in lines[0]

        client.cwd("QueueCalls")
        assert client.pwd() == "/QueueCalls"
        assert _download(client, "2024-05-01-queue-calls.zip") == tree.zip_bytes
        assert _download(client, "2024-05-01-queue-calls.zip", rest=700_000) == tree.zip_bytes[700_000:]
        client.voidcmd("TYPE I")
        assert client.size("2024-05-01-queue-calls.zip") == len(tree.zip_bytes)
        mtime = (tree.files / "QueueCalls" / "2024-05-01-queue-calls.zip").stat().st_mtime
        assert client.voidcmd("MDTM /QueueCalls/2024-05-01-queue-calls.zip") == \
            "213 " + time.strftime("%Y%m%d%H%M%S", time.gmtime(mtime))

        assert _download(client, f"/CDRs/{ODD_NAME}") == (tree.files / "CDRs" / ODD_NAME).read_bytes()
        mlsd = dict(client.mlsd("/CDRs"))
        assert mlsd[ODD_NAME]["perm"] == "r" and mlsd["2024-05-01.csv"]["size"] == str(len(tree.top_csv))


def test_plain_ftp_cannot_log_in(server: FtpsServer) -> None:
    with ftplib.FTP(timeout=10) as client:
        client.connect("127.0.0.1", server.port)
        assert "callcenter FTPS ready" in client.getwelcome()
        with pytest.raises(ftplib.error_perm, match="550 SSL/TLS required on the control channel"):
            client.login("top", PASSWORD)


def test_data_connections_need_prot_p(server: FtpsServer, tree: Tree) -> None:
    with _connect(server, tree, protect=False) as client:
        with pytest.raises(ftplib.error_perm, match="550 SSL/TLS required on the data channel"):
            client.nlst()
        with pytest.raises(ftplib.error_perm, match="550 SSL/TLS required on the data channel"):
            _download(client, "/CDRs/2024-05-01.csv")
        client.prot_p()
        assert _download(client, "/CDRs/2024-05-01.csv") == tree.top_csv


def test_paths_outside_the_folders_are_refused(server: FtpsServer, tree: Tree) -> None:
    with _connect(server, tree) as client:
        for directory in ("../", "/..", "CDRs/../..", "/etc", "/units"):
            with pytest.raises(ftplib.error_perm, match=r"^550"):
                client.cwd(directory)
        assert client.pwd() == "/"
        for path in ("/../etc/passwd", "../../../../etc/passwd", "/etc/passwd", "CDRs/../../etc/passwd",
                     "/units/1/CDRs/2024-05-01.csv", str(tree.files / "CDRs" / "2024-05-01.csv")):
            with pytest.raises(ftplib.error_perm, match=r"^550"):
                _download(client, path)
            with pytest.raises(ftplib.error_perm, match=r"^550"):
                client.sendcmd(f"MDTM {path}")
        with pytest.raises(ftplib.error_perm, match=r"^550"):
            client.nlst("/..")
        assert client.nlst("/QueueCalls") == ["2024-05-01-queue-calls.zip"]
        for path in ("/QueueCalls/2024-05-02-queue-calls.zip.tmp", "/CDRs/.hidden/x.csv"):
            with pytest.raises(ftplib.error_perm, match=r"^550 No such file"):
                _download(client, path)


def test_nothing_can_be_written(server: FtpsServer, tree: Tree) -> None:
    before = _snapshot(tree.files)
    with _connect(server, tree) as client:
        with pytest.raises(ftplib.error_perm, match=r"^55"):
            client.storbinary("STOR /CDRs/new.csv", io.BytesIO(b"x"))
        with pytest.raises(ftplib.error_perm, match=r"^55"):
            client.storbinary("APPE /CDRs/2024-05-01.csv", io.BytesIO(b"x"))
        with pytest.raises(ftplib.error_temp, match=r"^450"):
            client.storbinary("STOU /CDRs/new.csv", io.BytesIO(b"x"))
        for command in ("DELE /CDRs/2024-05-01.csv", "MKD /CDRs/new", "MKD /new", "RMD /QueueCalls",
                        "RNFR /CDRs/2024-05-01.csv", "SITE CHMOD 777 /CDRs/2024-05-01.csv",
                        "MFMT 20200101000000 /CDRs/2024-05-01.csv"):
            with pytest.raises(ftplib.error_perm, match=r"^55"):
                client.sendcmd(command)
    assert _snapshot(tree.files) == before


def test_a_unit_admin_sees_only_the_unit(server: FtpsServer, tree: Tree) -> None:
    with _connect(server, tree, "unitadm") as client:
        assert client.nlst("/") == list(FOLDERS)
        # escape.csv and etc point out of the unit's folder: not listed, not served.
        assert client.nlst("/CDRs") == ["2024-05-01.csv"]
        assert [name for name, _ in client.mlsd("/CDRs")] == ["2024-05-01.csv"]
        assert _download(client, "/CDRs/2024-05-01.csv") == tree.unit_csv
        assert client.nlst("/Recordings/2024-05-01") == ["call.mp3"]
        for path in ("/CDRs/escape.csv", "/CDRs/etc/passwd", f"/CDRs/{ODD_NAME}",
                     "/QueueCalls/2024-05-01-queue-calls.zip", "/../CDRs/2024-05-01.csv",
                     "/CDRs/../../../CDRs/2024-05-01.csv", "/units/2/CDRs/2024-05-02.csv"):
            with pytest.raises(ftplib.error_perm, match=r"^550"):
                _download(client, path)
        for directory in ("/CDRs/etc", "/../..", "/units"):
            with pytest.raises(ftplib.error_perm, match=r"^550"):
                client.cwd(directory)


def test_an_admin_of_two_units_sees_a_folder_per_unit(server: FtpsServer, tree: Tree) -> None:
    with _connect(server, tree, "twounits") as client:
        assert client.nlst("/") == ["Sales", "Support"]
        assert sorted(client.nlst("/Sales")) == list(FOLDERS)
        assert _download(client, "/Sales/CDRs/2024-05-01.csv") == tree.unit_csv
        assert _download(client, "/Support/CDRs/2024-05-02.csv") == b"unit 2\r\n"
        with pytest.raises(ftplib.error_perm, match=r"^550"):
            _download(client, "/CDRs/2024-05-01.csv")


def test_an_admin_with_nothing_in_scope_is_told_why_and_sees_no_folder(server: FtpsServer, tree: Tree) -> None:
    client = ftplib.FTP_TLS(context=_context(tree), timeout=10)
    client.connect("127.0.0.1", server.port)
    client.auth()
    try:
        reply = client.login("nounit", PASSWORD)
        assert reply.startswith("230") and "You manage no organisational unit." in reply
        client.prot_p()
        assert client.nlst() == []
    finally:
        client.close()


def test_empty_folders_and_files_transfer_cleanly(server: FtpsServer, tree: Tree) -> None:
    # Nothing to send used to race the data connection's TLS handshake (ftplib: "shutdown while in init").
    with _connect(server, tree, "twounits") as client:
        for _ in range(25):
            assert client.nlst("/Support/Recordings") == []
            assert _download(client, "/Support/QueueCalls/empty.zip") == b""
            assert _download(client, "/Support/CDRs/2024-05-02.csv") == b"unit 2\r\n"


def _login_fails(server: FtpsServer, tree: Tree, login: str, password: str) -> str:
    with pytest.raises(ftplib.error_perm) as failure:
        _connect(server, tree, login, password).close()
    return str(failure.value)


def test_failed_logins_slow_down_the_next_attempts_without_locking_out(
        server: FtpsServer, tree: Tree, clock: FakeClock, accounts: Accounts) -> None:
    clock.now += FORGET_AFTER  # whatever other tests failed is forgotten
    # Three failures are free, and a success in between starts the count afresh.
    for _ in range(3):
        assert _login_fails(server, tree, "lockme", "wrong").startswith("530 Authentication failed")
    _connect(server, tree, "lockme").quit()
    for _ in range(3):
        _login_fails(server, tree, "lockme", "wrong")
    # The fourth, in another case (the same account), makes the next attempt wait a second.
    assert _login_fails(server, tree, "LockMe", "wrong").startswith("530 Authentication failed")
    accounts.checked.clear()
    refusal = _login_fails(server, tree, "lockme", PASSWORD)
    assert refusal.startswith("530 Too many failed logins; wait 1 second(s)"), refusal
    assert accounts.checked == []  # the password was not even checked
    _connect(server, tree, "top").quit()  # other logins from the same address are not affected

    clock.now += 1
    _login_fails(server, tree, "lockme", "wrong")  # the fifth: two seconds
    clock.now += 1.5
    assert "wait 1 second" in _login_fails(server, tree, "lockme", PASSWORD)  # refused: not counted
    clock.now += 0.5
    with _connect(server, tree, "lockme") as client:  # the right password is never locked out for good
        assert client.nlst() == list(FOLDERS)
    _connect(server, tree, "lockme").quit()  # and the success cleared the account's count
    clock.now += FORGET_AFTER


def test_the_throttle_is_the_one_passed_in(server: FtpsServer, tree: Tree, clock: FakeClock,
                                           throttle: LoginThrottle) -> None:
    # Failures counted elsewhere (the panel shares the instance) slow FTPS down too, by address.
    clock.now += FORGET_AFTER
    for n in range(11):
        throttle.failed("127.0.0.1", f"panel-user-{n}")
    assert "wait 1 second" in _login_fails(server, tree, "top", PASSWORD)
    assert throttle.wait_for("127.0.0.2", "top") == 0  # the account itself has no failure
    clock.now += FORGET_AFTER
    _connect(server, tree, "top").quit()


def test_admin_accounts_cost_one_argon2_check_known_or_not(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The user database behind FTPS: an unknown login must take as long as a wrong password, or the
    # answer's timing tells which logins exist.
    db = Database(f"sqlite:///{tmp_path / 'cc.db'}")
    db.migrate()
    with db.session() as session:
        add_user(session, name="Ada", login="ada", extension="2009", roles=("admin",), panel_password=PASSWORD)
        add_user(session, name="Off", login="off", roles=("admin",), panel_password=PASSWORD)
        add_user(session, name="Agent", login="agent", roles=("agent",), panel_password=PASSWORD)
        find_user(session, "off").disabled = True
    verified: list[str] = []
    real_verify = PasswordHasher.verify

    def counting(self: PasswordHasher, hash: str | bytes, password: str | bytes) -> bool:
        verified.append(str(password))
        return real_verify(self, hash, password)
    monkeypatch.setattr(PasswordHasher, "verify", counting)
    accounts = AdminAccounts(db, tmp_path / "files")
    try:
        for login, password in [("nobody-here", "guess"), ("ada", "guess"), ("off", PASSWORD), ("agent", PASSWORD)]:
            verified.clear()
            assert accounts.authenticate(login, password) is None, login
            assert verified == [password], login
        verified.clear()
        account = accounts.authenticate("ada", PASSWORD)
        assert account is not None and account.login == "ada" and verified == [PASSWORD]
        # Ada manages no unit and has no grant of every unit: no folder, and the reason in the reply.
        assert account.roots == {} and "You manage no organisational unit" in account.notice
        # One name per account for the throttle, whether the login or the extension was typed.
        assert accounts.account_key("2009") == accounts.account_key("ada") == "ada"
        assert accounts.account_key("Nobody-Here") == "nobody-here"
    finally:
        db.dispose()


def test_logins_failures_and_downloads_are_logged_without_passwords(
        server: FtpsServer, tree: Tree, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    _login_fails(server, tree, "top", "not-the-Password")
    with _connect(server, tree) as client:
        _download(client, "/CDRs/2024-05-01.csv")
    deadline = time.monotonic() + 3  # the server logs the transfer just after its 226 reply
    while "FTPS download" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "FTPS login failed for 'top' from 127.0.0.1" in caplog.text
    assert "FTPS login 'top' from 127.0.0.1" in caplog.text
    assert f"FTPS download /CDRs/2024-05-01.csv by 'top' from 127.0.0.1: complete, {len(tree.top_csv)} bytes" \
        in caplog.text
    assert "not-the-Password" not in caplog.text and PASSWORD not in caplog.text
    assert not [r for r in caplog.records if r.name.startswith("pyftpdlib") and r.levelno < logging.WARNING]


def test_curl_downloads_over_explicit_tls_only(server: FtpsServer, tree: Tree, tmp_path: Path) -> None:
    curl = _tool("curl")
    url = f"ftp://top:{PASSWORD}@127.0.0.1:{server.port}/QueueCalls/2024-05-01-queue-calls.zip"
    out = tmp_path / "out.zip"
    done = subprocess.run([curl, "-sS", "--ssl-reqd", "-k", "--ftp-pasv", url, "-o", str(out)],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == tree.zip_bytes
    # Checking the certificate instead of -k works too: it names 127.0.0.1.
    pinned = subprocess.run([curl, "-sS", "--ssl-reqd", "--cacert", str(tree.var / "ftps" / "cert.pem"),
                             f"ftp://top:{PASSWORD}@127.0.0.1:{server.port}/CDRs/2024-05-01.csv"],
                            capture_output=True, timeout=30)
    assert pinned.returncode == 0 and pinned.stdout == tree.top_csv, pinned.stderr

    plain = tmp_path / "plain.zip"
    refused = subprocess.run([curl, "-sS", url, "-o", str(plain)], capture_output=True, text=True, timeout=30)
    assert refused.returncode != 0 and "550" in refused.stderr
    assert not plain.exists()


def _lftp(server: FtpsServer, commands: str, as_user: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    script = ("set ftp:ssl-force true; set ftp:ssl-protect-data true; set ssl:verify-certificate no; "
              "set net:max-retries 1; set net:timeout 10; "
              f"open -u top,{PASSWORD} -p {server.port} 127.0.0.1; {commands}")
    return subprocess.run([*(as_user or []), _tool("lftp"), "-c", script], capture_output=True, text=True,
                          timeout=30)


def test_lftp_downloads_and_cannot_upload(server: FtpsServer, tree: Tree, tmp_path: Path) -> None:
    out = tmp_path / "lftp.csv"
    done = _lftp(server, f"get CDRs/2024-05-01.csv -o {out}")
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == tree.top_csv
    odd = tmp_path / "odd.csv"
    done = _lftp(server, f"get 'CDRs/{ODD_NAME}' -o {odd}")
    assert done.returncode == 0, done.stderr
    assert odd.read_bytes() == (tree.files / "CDRs" / ODD_NAME).read_bytes()

    local = tmp_path / "upload.csv"
    local.write_bytes(b"x\r\n")
    refused = _lftp(server, f"put {local} -o CDRs/upload.csv")
    assert refused.returncode != 0 and "550" in refused.stderr
    assert not (tree.files / "CDRs" / "upload.csv").exists()


def test_lftp_mirror_keeps_the_files_readable(server: FtpsServer, tree: Tree) -> None:
    # lftp gives mirrored files the MLSD "unix.mode" fact; it could not parse "0o644" and made them
    # mode 000. Run as a user other than root, who could read them anyway.
    sources = {path.name: path for path in (tree.files / "CDRs").iterdir() if path.is_file()}
    for path in sources.values():
        path.chmod(0o644)
    with _connect(server, tree) as client:
        facts = dict(client.mlsd("/CDRs", facts=["type", "unix.mode"]))
        assert facts["2024-05-01.csv"]["unix.mode"] == "0644"
    as_user: list[str] = []
    target = Path(tempfile.mkdtemp(prefix="ftps-mirror-"))
    try:
        if os.geteuid() == 0:
            as_user = [_tool("setpriv"), "--reuid=65534", "--regid=65534", "--clear-groups"]  # nobody
            os.chown(target, 65534, 65534)
        done = _lftp(server, f"mirror CDRs {target / 'CDRs'}", as_user)
        assert done.returncode == 0, done.stderr
        assert sorted(path.name for path in (target / "CDRs").iterdir()) == sorted(sources)
        for name, source in sources.items():
            copy = target / "CDRs" / name
            assert copy.stat().st_mode & 0o777 == 0o644
            read = subprocess.run([*as_user, "cat", str(copy)], capture_output=True, timeout=10)
            assert read.returncode == 0 and read.stdout == source.read_bytes(), read.stderr
    finally:
        shutil.rmtree(target)


def test_tls_below_1_2_is_refused(server: FtpsServer) -> None:
    openssl = _tool("openssl")

    def handshake(version: str) -> str:
        done = subprocess.run([openssl, "s_client", "-starttls", "ftp", "-connect", f"127.0.0.1:{server.port}",
                               version, "-cipher", "DEFAULT@SECLEVEL=0"],
                              input="", capture_output=True, text=True, timeout=30)
        return done.stdout + done.stderr

    assert "Protocol  : TLSv1.2" in handshake("-tls1_2")
    old = handshake("-tls1_1")
    assert "alert protocol version" in old and "Cipher is (NONE)" in old


def _served_fingerprint(server: FtpsServer) -> str:
    with ftplib.FTP_TLS(context=ssl._create_unverified_context(), timeout=10) as client:
        client.connect("127.0.0.1", server.port)
        client.auth()
        der = client.sock.getpeercert(binary_form=True)  # type: ignore[union-attr]
        client.quit()
    return hashlib.sha256(der).hexdigest()


def _file_fingerprint(pem: Path) -> str:
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem.read_text())).hexdigest()


def test_the_certificate_is_generated_once_and_reused(tmp_path: Path) -> None:
    var = tmp_path / "var"
    fingerprints = []
    for _ in range(2):
        settings = FtpsSettings(port=free_tcp_port(), passive_ports=_free_port_range(2))
        ftps = FtpsServer(settings, var, Accounts(tmp_path), LoginThrottle())
        ftps.start()
        try:
            fingerprints.append(_served_fingerprint(ftps))
        finally:
            ftps.stop()
    certificate, key = var / "ftps" / "cert.pem", var / "ftps" / "key.pem"
    assert fingerprints[0] == fingerprints[1] == _file_fingerprint(certificate)
    assert key.stat().st_mode & 0o777 == 0o600
    assert ensure_certificate(FtpsSettings(), var) == (certificate, key)
    assert _file_fingerprint(certificate) == fingerprints[0]

    # Deleted (to replace it): a new one on the next start.
    certificate.unlink()
    ensure_certificate(FtpsSettings(), var)
    assert _file_fingerprint(certificate) != fingerprints[0]


def test_a_configured_certificate_is_used_and_a_missing_one_named(tmp_path: Path) -> None:
    own = tmp_path / "own"
    generated, key = ensure_certificate(FtpsSettings(), own)
    assert ensure_certificate(FtpsSettings(certificate=str(generated), private_key=str(key)), tmp_path) == \
        (generated, key)
    missing = tmp_path / "nowhere" / "cert.pem"
    with pytest.raises(ProvisioningError, match=re.escape(f"ftps.certificate = '{missing}': No such file")):
        ensure_certificate(FtpsSettings(certificate=str(missing)), tmp_path)
    with pytest.raises(ProvisioningError, match=r"ftps\.private_key = .*key\.pem'"):
        ensure_certificate(FtpsSettings(certificate=str(generated), private_key=str(tmp_path / "key.pem")), tmp_path)
    with pytest.raises(ProvisioningError, match=r"ftps\.certificate is empty"):
        ensure_certificate(FtpsSettings(private_key=str(key)), tmp_path)
    assert not (tmp_path / "ftps").exists()  # nothing generated when files are configured


def test_a_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ftps = FtpsServer(FtpsSettings(port=port, passive_ports=_free_port_range(2)), tmp_path, Accounts(tmp_path),
                          LoginThrottle())
        with pytest.raises(ProvisioningError, match=rf"FTPS cannot listen on 127\.0\.0\.1:{port}: .*in use"):
            ftps.start()
    with pytest.raises(ProvisioningError, match=r"ftps\.passive_ports '3-1'"):
        FtpsServer(FtpsSettings(passive_ports="3-1"), tmp_path, Accounts(tmp_path), LoginThrottle()).start()


def test_stop_is_quick_and_closes_sessions(tree: Tree, tmp_path: Path) -> None:
    settings = FtpsSettings(port=free_tcp_port(), passive_ports=_free_port_range(2))
    ftps = FtpsServer(settings, tree.var, Accounts(tree.files), LoginThrottle())
    ftps.start()
    client = _connect(ftps, tree)
    started = time.monotonic()
    ftps.stop()
    assert time.monotonic() - started < 2
    with pytest.raises((EOFError, OSError, ftplib.Error)):
        client.nlst()
    client.close()
    with socket.socket() as probe:  # the port is free again
        probe.bind(("127.0.0.1", settings.port))


def test_passive_ports_come_from_the_range_and_the_masquerade_address_is_announced(tree: Tree) -> None:
    passive = _free_port_range(3)
    first, last = (int(port) for port in passive.split("-"))
    settings = FtpsSettings(port=free_tcp_port(), passive_ports=passive, masquerade_address="192.0.2.7")
    ftps = FtpsServer(settings, tree.var, Accounts(tree.files), LoginThrottle())
    ftps.start()
    try:
        with _connect(ftps, tree) as client:
            for _ in range(5):
                reply = client.sendcmd("PASV")
                numbers = [int(n) for n in re.findall(r"\d+", reply.split("(", 1)[1])]
                assert numbers[:4] == [192, 0, 2, 7]
                assert first <= numbers[4] * 256 + numbers[5] <= last
    finally:
        ftps.stop()


def test_folder_names_that_would_escape_are_rejected() -> None:
    for name in ("..", ".", "", "a/b", "x\r\ny"):
        with pytest.raises(ValueError, match="not a usable file name"):
            FtpAccount("someone", {name: Path("/tmp")})
