"""The checks, one module per requirement group of CONTRACT.md."""
