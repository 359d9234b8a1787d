"""Widgets of the main window: photo list, compare view, controls, face preview, references."""
