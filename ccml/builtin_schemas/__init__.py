"""Built-in feature schema files (package data)."""
