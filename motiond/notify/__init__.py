"""The outside world: event hooks, MQTT with Home Assistant discovery, off-site uploads."""
