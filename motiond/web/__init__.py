"""The web side: Tornado app, handlers, live view."""
