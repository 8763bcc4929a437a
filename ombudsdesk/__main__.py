"""`python -m ombudsdesk` is the `ombudsdesk` command."""

from ombudsdesk.cli import main

main()
