"""What the three ombudsdesk services share: event contracts, stream names, settings base, logging, plumbing."""
