"""Where a zoo is read from (a ``Source``: the working tree or a git revision) and the working tree's write
surface (``Workspace``: lock, paths, staging, rows, validating a change, and one ``Transaction``)."""
