"""Prototypes of motiond's camera config (name, motion, record) in pydantic v2 and msgspec, for
``scripts/config_libraries.py`` to measure against ``motiond/config.py``. Not used by motiond."""
