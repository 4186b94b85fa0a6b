"""Settings, model providers and logging: everything that depends on the environment the app runs in."""

from config.settings import Settings, get_settings

__all__ = ["Settings", "get_settings"]
