"""Where checkpoint bytes live, behind one interface in zoo terms (``base.CheckpointStore``).

``dvc.Storage`` is the one implementation and the only module that imports DVC; it is imported
lazily (``Zoo.storage``) so that commands that never touch bytes never pay for importing DVC.
"""
