"""Time-based one-time codes (RFC 6238, `pyotp`) as a second factor, and the QR code an authenticator app scans
(`qrcode`, SVG drawn in the page: no image request, no third party). Pure, no I/O.

A code is accepted in its 30-second step or the one before/after (clock drift), and only once: the step of the last
accepted code is kept with the account, so a code seen over a shoulder cannot be replayed within its window.
"""

from __future__ import annotations

import io
import re
from datetime import datetime

import pyotp
import qrcode
import qrcode.image.svg

ISSUER = "ombudsdesk"
CODE = re.compile(r"^\d{6}$")


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def accepted_step(secret: str, code: str, now: datetime, last_step: int | None) -> int | None:
    """The time step `code` belongs to when it is valid now and newer than the last accepted one, else None."""
    code = code.strip().replace(" ", "")
    if not CODE.match(code):
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in (current - 1, current, current + 1):
        if last_step is not None and step <= last_step:
            continue
        if pyotp.utils.strings_equal(totp.generate_otp(step), code):
            return step
    return None


def qr_svg(uri: str) -> str:
    """The URI as an inline SVG QR code (without the XML declaration, to sit inside HTML)."""
    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    buffer = io.BytesIO()
    image.save(buffer)
    svg = buffer.getvalue().decode("utf-8")
    return svg[svg.index("<svg"):]
