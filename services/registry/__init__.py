"""The registry service: the register of record (numbers, files, deadlines, holding pen, indicators)."""
