"""The nightly pipeline: features, training, evaluation, scoring, tree compilation."""
