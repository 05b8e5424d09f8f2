"""The science of ibtui, usable as a library: no textual, no matplotlib."""
