"""The JSON Schema of routes.toml, shipped as package data."""
