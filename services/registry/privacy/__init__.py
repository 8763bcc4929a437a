"""Privacy in the register (issue 16): the retention schedule (`schedule.py`, pure), anonymising and erasing a file's
personal data (`anonymise.py`) through the registry's commands (`handlers.py`), the retention run and its daily job
(`retention.py`), a citizen's erasure on request (`erase.py`), and `ombudsdesk privacy` (`cli.py`).
docs/privacy.md describes them for operators and the DPO.

Kept free of imports: `handlers/__init__.py` imports `privacy.handlers` while it is itself being imported.
"""
