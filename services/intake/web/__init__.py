"""The public pages intake serves (issue 17): the online complaint form and its confirmation.

- `form.py` and `uploads.py`: what was submitted, checked (pure);
- `tokens.py`: the form's signed token (its submission's identity, and the proof it came from our page);
- `abuse.py`: submissions per client address;
- `submission.py`: a checked form into its durable `MessageReceived(channel=web_form)`, through the pipeline;
- `app.py`: the pages (FastAPI, Jinja2, FR/NL/DE/EN catalogue in `messages/`); `channel.py`: serving them as one of
  intake's channels.
"""
