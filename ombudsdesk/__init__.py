"""The `ombudsdesk` command line and the all-in-one local launcher (`make run`)."""
