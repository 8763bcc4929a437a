"""The public pages, one module per page family; each exposes `router(context)` (`app.create_public_app`)."""
