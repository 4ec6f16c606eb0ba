"""Evaluation: what to evaluate and under which memo key (``plan``), how a task's checkpoint is run over a
split (``evaluators``), metrics torchmetrics lacks (``metrics``), and the run itself (``run``)."""
