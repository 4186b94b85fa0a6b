"""The course evaluation: the scoring API, attachments, batch runs and submission under a verified identity."""
