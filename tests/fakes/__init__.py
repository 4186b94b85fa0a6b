"""Local stand-ins for the services the app talks to, serving their real wire formats on 127.0.0.1."""
