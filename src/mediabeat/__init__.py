"""MediaBeat: scheduled crawling and background tasks for media monitoring."""

__version__ = "0.1.0"
