"""This zoo's own code: architectures, dataset loaders, evaluators or metrics that conf/ names as
``zoo_code.<module>.<name>``. Versioned with the zoo; a zoo opened from a URL or another revision runs
it only when trusted (``Zoo(url, trust_code=True)`` or ``--trust-code``)."""
