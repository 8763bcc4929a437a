"""Tests of staff identity: accounts, sessions, tokens, throttling, TOTP, CSRF, hosts, single sign-on, CLI."""
