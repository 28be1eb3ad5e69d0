"""The command line: thin commands over the library (see the sub-modules per noun)."""
