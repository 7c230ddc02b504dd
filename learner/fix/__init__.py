"""fix layer."""
