"""Sending one email through the configured SMTP server (blocking: call it in a thread).

Over smtp:// the connection is upgraded with STARTTLS whenever the server offers it; a
password is never sent in the clear, except to a server on loopback. Run alerts and
monitor deliveries both send through here.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from mediabeat.settings import SmtpServer


def send_mail(server: SmtpServer, message: EmailMessage, *, timeout_s: float) -> None:
    """Send `message`; raises smtplib.SMTPException, OSError or ValueError when it was not accepted."""
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if server.implicit_tls:
        smtp = smtplib.SMTP_SSL(server.host, server.port, timeout=timeout_s, context=context)
    else:
        smtp = smtplib.SMTP(server.host, server.port, timeout=timeout_s)
    with smtp:
        smtp.ehlo()
        if not server.implicit_tls and smtp.has_extn("starttls"):
            smtp.starttls(context=context)
            smtp.ehlo()
        if server.username:
            encrypted = server.implicit_tls or (smtp.sock is not None and isinstance(smtp.sock, ssl.SSLSocket))
            if not encrypted and not server.on_loopback:
                raise ValueError(f"{server.host} offers no STARTTLS: not sending the password in the clear")
            smtp.login(server.username, server.password or "")
        smtp.send_message(message)
