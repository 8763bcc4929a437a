"""Understanding one message (pure, no I/O): MIME, charsets, addresses, authentication results, the chain of named
rules that decides its kind (rules/: bounces and reports, staff forwards, machines' mail), the new text apart from
quoted history, language, references, the message key."""
