"""A throwaway Dovecot IMAP server for the IMAP tests: its own configuration, passwd-file user and maildirs under a
temporary directory, plaintext login on 127.0.0.1 only, on a free port.

Dovecot refuses to run its login processes as root, so when the tests run as root the login and internal processes
use Dovecot's unprivileged system users (`dovenull`, `dovecot`) and the mail user is `nobody`; the temporary directory
is made traversable for them. As an ordinary user, every process simply runs as that user.
Installed by `deploy/test-deps/install-system-packages.sh` (called by `make test`).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from ombudsdesk.embedded_nats import free_port, wait_for_port

IMAP_USER = "plaintes"
IMAP_PASSWORD = "correct horse battery staple"


def dovecot_binary() -> str | None:
    return shutil.which("dovecot") or next(
        (path for path in ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot") if os.access(path, os.X_OK)), None
    )


def _account(name: str) -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


class Dovecot:
    """One Dovecot instance: `start()`, `stop()`, `host`, `port`, `user`, `password`."""

    def __init__(self, binary: str, tls: bool = False) -> None:
        self.binary = binary
        self.host = "127.0.0.1"
        self.port = free_port()
        # With `tls`, an IMAPS listener (RFC 8314 implicit TLS) with a self-signed certificate on `tls_port` as well.
        self.tls_port = free_port() if tls else 0
        self.user = IMAP_USER
        self.password = IMAP_PASSWORD
        self.root = Path(tempfile.mkdtemp(prefix="ombudsdesk-dovecot-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def log_file(self) -> Path:
        return self.root / "dovecot.log"

    def _identities(self) -> tuple[str, str, int, int]:
        """(login user, internal user, mail uid, mail gid) for the user running the tests."""
        if os.geteuid() != 0:
            me = pwd.getpwuid(os.geteuid())
            return me.pw_name, me.pw_name, me.pw_uid, me.pw_gid
        login = _account("dovenull") or _account("nobody")
        internal = _account("dovecot") or _account("nobody")
        mail = _account("nobody")
        if login is None or internal is None or mail is None:
            raise RuntimeError("running as root but no unprivileged dovenull/dovecot/nobody account for Dovecot")
        return login.pw_name, internal.pw_name, mail.pw_uid, mail.pw_gid

    def _write_config(self) -> Path:
        login_user, internal_user, mail_uid, mail_gid = self._identities()
        for name in ("run", "state", "mail"):
            (self.root / name).mkdir()
        passwd = self.root / "users.passwd"
        passwd.write_text(f"{self.user}:{{PLAIN}}{self.password}:{mail_uid}:{mail_gid}::{self.root}/mail/{self.user}\n")
        config = self.root / "dovecot.conf"
        config.write_text(self._tls_settings() + f"""\
base_dir = {self.root}/run
state_dir = {self.root}/state
instance_name = ombudsdesk-test-{self.port}
log_path = {self.log_file}
protocols = imap
listen = {self.host}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_login_user = {login_user}
default_internal_user = {internal_user}
first_valid_uid = {min(mail_uid, 500) if mail_uid else 0}
mail_location = maildir:~/Maildir
mailbox_idle_check_interval = 1 secs
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {passwd}
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {passwd}
}}
service imap-login {{
  inet_listener imap {{
    address = {self.host}
    port = {self.port}
  }}
  inet_listener imaps {{
    address = {self.host}
    port = {self.tls_port}
    ssl = yes
  }}
}}
namespace inbox {{
  inbox = yes
  separator = /
}}
""")
        # Let the unprivileged Dovecot processes reach the configuration, the passwd file and the mail.
        self.root.chmod(0o755)
        for path in (config, passwd):
            path.chmod(0o644)
        if os.geteuid() == 0:
            os.chown(self.root / "mail", mail_uid, mail_gid)
        return config

    def _tls_settings(self) -> str:
        if not self.tls_port:
            return "ssl = no\n"
        cert, key = self.root / "cert.pem", self.root / "key.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost"],
            check=True, capture_output=True,
        )
        return f"ssl = yes\nssl_cert = <{cert}\nssl_key = <{key}\n"

    def start(self) -> "Dovecot":
        config = self._write_config()
        # Its own process group: `stop` ends the master and every child it forked at once.
        self.process = subprocess.Popen(
            [self.binary, "-F", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            wait_for_port(self.port, timeout=15)
            if self.tls_port:
                wait_for_port(self.tls_port, timeout=15)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"Dovecot did not start: {self.diagnostics()}") from None
        return self

    def diagnostics(self) -> str:
        stderr = b""
        if self.process and self.process.stderr and self.process.poll() is not None:
            stderr = self.process.stderr.read() or b""
        log = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
        return (stderr.decode(errors="replace") + log)[-2000:]

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            # A throwaway server: no graceful shutdown (the master's SIGTERM path waits a full second per test).
            with contextlib.suppress(ProcessLookupError):  # already gone
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        if self.process and self.process.stderr:
            self.process.stderr.close()
        self.process = None
        # Dovecot's processes may still be releasing files for a moment after the master exits.
        for _ in range(20):
            try:
                shutil.rmtree(self.root)
                return
            except OSError:
                time.sleep(0.05)
