"""The catalogue: the metadata table, its schema and rules, references, queries and the @best rule."""
