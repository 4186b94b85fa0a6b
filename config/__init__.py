"""Settings and logging: everything read from the environment the app runs in."""

from config.settings import Settings, get_settings

__all__ = ["Settings", "get_settings"]
