"""The crawler: a safe HTTP client, feed fetching and parsing, and article extraction."""
