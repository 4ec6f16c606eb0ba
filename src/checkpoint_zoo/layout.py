"""Where things live in a zoo repository: the table, the checkpoint folders, the metrics, the registries and
the zoo's own code folder. Fixed names, no environment: ``utils/environ.py`` reads the environment."""

from __future__ import annotations

TABLE_PATH = "zoo/checkpoints.csv"
CHECKPOINTS_DIR = "zoo/checkpoints"
METRICS_DIR = "zoo/metrics"
EVALUATIONS_DIR = "zoo/metrics/evaluations"
REGISTRY_FILE = "zoo/metrics/registry.json"  # the releases and stages the registry stage reads from the tags
LOCK_NAME = "zoo.lock"
CONF_DIR = "conf"
# Registries: one YAML file per entry, conf/<group>/<name>.yaml (see registry/).
REGISTRY_GROUPS = ("arch", "task", "dataset")
# The first words of an architecture file `zoo add` wrote from a folder's config.json: it goes with the
# model's last checkpoint when `zoo rm` removes that.
AUTO_ARCH_NOTE = "Written by `zoo add` from the config.json of"
# The zoo's own code (architectures, loaders, metrics it defines), importable as this package name.
CODE_DIR = "zoo_code"
