"""The four roles (planner, researcher, coder, critic), their prompts and their tools."""
