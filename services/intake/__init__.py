"""Intake: turns incoming email (SMTP, IMAP) and scanned letters into events on JetStream."""
