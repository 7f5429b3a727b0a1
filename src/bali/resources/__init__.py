"""Files shipped inside the package (the demo preset)."""
