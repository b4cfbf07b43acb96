"""Textual front end and command line of aksnet-top."""
