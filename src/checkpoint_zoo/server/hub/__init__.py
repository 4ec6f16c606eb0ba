"""The Hugging Face Hub's read protocol over ``zoo serve``: ``/{ns}/{model}/resolve/{rev}/{file}`` and
``/api/models/{ns}/{model}[/revision/{rev}|/tree/{rev}|/refs]``, so ``hf_hub_download``, ``snapshot_download``,
``from_pretrained`` and timm's ``hf-hub:`` names read the zoo with only ``HF_ENDPOINT`` set.

``names`` parses raw paths and revisions (pure), ``files`` builds what a checkpoint is served as (weights,
``config.json``, ``README.md``) and its commit id, ``state`` resolves a revision to a checkpoint (in the snapshot
the request's token sees), ``redirect`` presigns S3 URLs for ``--redirect-to-storage``, ``routes`` is the ASGI
layer mounted in front of the app's own routes.
"""

from .routes import HubRoutes

__all__ = ["HubRoutes"]
