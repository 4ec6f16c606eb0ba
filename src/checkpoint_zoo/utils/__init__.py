"""General helpers with no zoo knowledge: the bottom layer, importable from anywhere in the package."""
