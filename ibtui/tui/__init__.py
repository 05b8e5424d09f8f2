"""The interactive app (Textual). Imported lazily by the CLI, so headless runs never load textual."""
