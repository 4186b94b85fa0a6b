"""The errors a model provider raises before any call is made."""

from __future__ import annotations


class ProviderNotConfigured(Exception):
    """No usable model provider, or the chosen one lacks what it needs. The message is one line naming what to
    set, install or download."""
