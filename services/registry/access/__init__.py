"""Who may do what in the registry (issue 13): staff identity, roles and permissions, sessions and API tokens, the
audit trail of every read and change.

- `roles`: the one permission table and the visibility rules (pure, no I/O);
- `dependencies`: the FastAPI dependencies the JSON API and the back-office pages share (identity, permission, CSRF);
- `accounts`: the account tables and `AccountStore` (accounts, sessions, API tokens, one-time links, login failures);
- `passwords` (Argon2id), `tokens` (random secrets and their digests), `totp` (second factor), `throttling` (pure);
- `sessions`: the session cookie; `guards`: Host, JSON-only and cross-site checks; `oidc`: single sign-on;
- `audit`: the audit trail.
"""
