"""Report dataclasses (the JSON schema) and the renderers that turn them into text."""
