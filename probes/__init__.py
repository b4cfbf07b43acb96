"""Headless observation library for aksnet-top. Never imports textual."""
