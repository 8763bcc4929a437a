"""Understanding one message (pure, no I/O): MIME, charsets, addresses, authentication results, automation,
bounces and reports, forwards, language, references, the message key."""
