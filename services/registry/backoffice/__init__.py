"""The staff back office (issue 13): server-rendered pages (Jinja2, partial updates with htmx shipped in `static/`,
no Node build, no CDN) served by the registry next to its JSON API, under `/backoffice/`.

- `app`: mounts the pages and the static files on the registry's FastAPI application;
- `rendering`: the one way a page is rendered (translator, CSRF token, the person, the navigation);
- `i18n`: what staff read, in French, Dutch, German and English, from `messages/*.toml`;
- `pages/`: one module per page family (register, file, holding pen, deadlines, manual entry, account, admin, audit).
"""
