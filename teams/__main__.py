"""`python -m teams`: the terminal command lives in cli/ask.py."""

from cli.ask import main

raise SystemExit(main())
