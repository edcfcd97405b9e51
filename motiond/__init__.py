"""motiond: a headless, motion-triggered video recorder daemon."""

__version__ = "0.1.0"
