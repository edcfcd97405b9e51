"""Capture: the per-camera capture loop, the sources it reads, and an IP camera's sub stream."""
