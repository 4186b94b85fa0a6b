"""The Chainlit UI's pieces; `chainlit_app.py` wires them to Chainlit's hooks.

Nothing here may import `chainlit_app` (Chainlit loads that module itself, and importing it twice would
register every hook twice).
"""
