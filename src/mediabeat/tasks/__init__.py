"""The task handlers that scheduled tasks run."""
