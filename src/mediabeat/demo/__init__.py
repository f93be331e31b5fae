"""The demo news site: a local, deterministic stand-in for publishers (`mediabeat demo-site`, the tests)."""
