"""Downstream task readers, one module per format."""
