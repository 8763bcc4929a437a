"""The mediator's work beyond register-and-answer (issue 15), as pure rules and their stores: the directory of
administrations and requests for their position (`administrations.py`, `administrations_cli.py`), requests for
information to the citizen (`information_requests.py`), recommendations followed up (`recommendations.py`,
`recommendation_store.py`), possible duplicates (`duplicates.py`, `duplicate_store.py`), and the DPO's notice
(`dpo.py`). Their command handlers are in `handlers/`."""
