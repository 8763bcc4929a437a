"""The registry's answers to intake's public pages (issue 17), each a core NATS request/reply with a queue group, and
what stands behind them: a web-form complaint's number (`case_lookup.py`), orientation towards the competent
ombudsman (`orientation.py`), the citizen's personal link to their file (`citizen_access.py`, answered by
`citizen_responder.py`), the satisfaction survey (`survey.py`); `answering.py` makes every responder answer at
once, whatever comes."""
