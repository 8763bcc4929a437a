"""Scanned post: the drop folder, CSV manifests and sidecars, scan-to-email, their staff-facing messages."""
