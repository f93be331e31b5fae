"""Full-text search: the query language (pure parsing), its Python evaluator and the tokenisation rule."""
