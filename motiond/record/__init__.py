"""Recording: the clip flow over the pre-roll ring, the recorder thread, encoders, snapshots."""
