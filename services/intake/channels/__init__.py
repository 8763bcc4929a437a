"""How mail reaches intake: the SMTP front door and its limits, the spool and its worker, IMAP mailboxes."""
