"""One run: resolving its configuration, preparing and executing it, and the files it writes."""
