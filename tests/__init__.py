"""Tests: offline, against scripted and replica models and local servers in the real services' formats."""
