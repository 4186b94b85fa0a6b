"""The terminal: `python -m teams` / `roundtable` asks one question and renders the debate as it streams."""
