"""Story clusters: near-duplicate articles of an organisation grouped as one story (MinHash LSH in the database)."""
