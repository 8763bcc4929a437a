"""Who may do what in the registry (issue 13): staff identity, roles and permissions, sessions and API tokens, the
audit trail of every read and change.

- `roles`: the one permission table and the visibility rules (pure, no I/O);
- `dependencies`: the FastAPI dependencies the JSON API and the back-office pages share (identity, permission, CSRF);
- the account, session and audit stores beside them.
"""
