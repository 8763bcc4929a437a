"""The notifier: acknowledgments, notices to citizens and deadline warnings to staff, each sent exactly once."""
