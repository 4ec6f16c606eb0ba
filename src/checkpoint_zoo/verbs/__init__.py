"""One module per verb group; ``api.Zoo`` delegates to them (docs/architecture.md)."""
