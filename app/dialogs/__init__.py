"""Dialogs: models, export, settings, about."""
