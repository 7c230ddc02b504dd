"""rust layer."""
