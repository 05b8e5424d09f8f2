"""Modal screens: confirm quit, choose a preset, help."""
