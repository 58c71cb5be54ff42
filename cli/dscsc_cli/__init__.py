"""dscsc's command line: assembles plugins into runs. The only layer that prints."""
