"""Storage: the on-disk layout and clip record, the clip index, retention, crash recovery."""
