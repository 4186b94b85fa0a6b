"""The agents: the roles (agents/roles.py), their prompts, the code that builds one, and their tools."""
