"""Monitoring: profiles of data and predictions, and (built on them) drift and performance checks."""
