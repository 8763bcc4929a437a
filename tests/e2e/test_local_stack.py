"""`make run`'s launcher as a newcomer meets it: it starts everything, says where to send mail, an email sent there
produces an acknowledgment in `var/outbox/`, and Ctrl-C (SIGINT) stops every process cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest

from ombudsdesk.embedded_nats import free_port
from tests.e2e.stack import complaint_mail, send_mail


def wait_for_line(process: subprocess.Popen[str], needle: str, timeout: float) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            if process.poll() is not None:
                break
            continue
        seen.append(line)
        if needle in line:
            return seen
    raise AssertionError(f"{needle!r} never printed; output was:\n{''.join(seen)}")


def wait_for_files(folder: Path, pattern: str, timeout: float) -> list[Path]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sorted(folder.glob(pattern)) if folder.exists() else []
        if found:
            return found
        time.sleep(0.05)
    return []


@pytest.mark.slow
def test_run_refuses_to_start_on_a_taken_port_and_names_the_variable(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        environment = {**os.environ, "OMBUDSDESK_VAR_DIR": str(tmp_path / "var"),
                       "OMBUDSDESK_EMBEDDED_NATS_PORT": str(free_port()), "OMBUDSDESK_MAILCATCHER_PORT": str(free_port()),
                       "OMBUDSDESK_SMTP_PORT": str(taken), "OMBUDSDESK_INTAKE_HEALTH_PORT": str(free_port()),
                       "OMBUDSDESK_REGISTRY_API_PORT": str(free_port()),
                       "OMBUDSDESK_NOTIFIER_HEALTH_PORT": str(free_port()),
                       "OMBUDSDESK_PUBLIC_WEB_PORT": str(free_port())}
        result = subprocess.run([sys.executable, "-m", "ombudsdesk", "run"], env=environment, cwd=tmp_path,
                                capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert f"port {taken} (OMBUDSDESK_SMTP_PORT) is already in use" in result.stderr + result.stdout


@pytest.mark.slow
def test_run_prints_where_to_send_mail_and_the_acknowledgment_lands_in_the_outbox(tmp_path):
    smtp_port, web_port = free_port(), free_port()
    environment = {
        **os.environ,
        "OMBUDSDESK_VAR_DIR": str(tmp_path / "var"),
        "OMBUDSDESK_EMBEDDED_NATS_PORT": str(free_port()),
        "OMBUDSDESK_MAILCATCHER_PORT": str(free_port()),
        "OMBUDSDESK_SMTP_PORT": str(smtp_port),
        "OMBUDSDESK_INTAKE_HEALTH_PORT": str(free_port()),
        "OMBUDSDESK_REGISTRY_API_PORT": str(free_port()),
        "OMBUDSDESK_NOTIFIER_HEALTH_PORT": str(free_port()),
        "OMBUDSDESK_PUBLIC_WEB_PORT": str(web_port),
        "PYTHONUNBUFFERED": "1",
    }
    environment.pop("OMBUDSDESK_NATS_URL", None)
    # Its own process group, signalled as a whole below: exactly what a terminal's Ctrl-C does.
    launcher = subprocess.Popen([sys.executable, "-m", "ombudsdesk", "run"], env=environment, cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        banner = "".join(wait_for_line(launcher, "Stop with Ctrl-C", timeout=90))
        assert f":{smtp_port}" in banner
        assert "plaintes@ombudsdesk.localhost" in banner
        assert "/backoffice/welcome/" in banner  # a first start: the administrator's one-time login link
        assert f"Public complaint form (for citizens): http://127.0.0.1:{web_port}/" in banner
        with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/complaint", timeout=10) as form:
            assert "Introduire une plainte" in form.read().decode()
        sent_at = time.monotonic()
        send_mail(smtp_port, complaint_mail("Jeanne Dupont <jeanne@example.org>", "Ma plainte", "Bonjour, ..."))
        [acknowledgment] = wait_for_files(tmp_path / "var" / "outbox", "*.eml", timeout=30)
        latency = time.monotonic() - sent_at
        print(f"acknowledgment in the outbox {latency:.2f} s after the SMTP conversation began")
        mail = BytesParser(policy=policy.default).parsebytes(acknowledgment.read_bytes())
        assert mail["To"].addresses[0].addr_spec == "jeanne@example.org"
        assert "MED-" in mail["Subject"]
        # The citizen's personal link to the file, on the local public form's address.
        assert f"http://127.0.0.1:{web_port}/my-file/" in mail.get_body(("plain",)).get_content()
    finally:
        os.killpg(launcher.pid, signal.SIGINT)
        output, _ = launcher.communicate(timeout=60)
    assert launcher.returncode == 0, output
    assert "Traceback" not in output, output
    assert output.count("service.stopped") == 3, output
