"""The scheduler: task management, run recording, and the loop that fires due tasks."""
