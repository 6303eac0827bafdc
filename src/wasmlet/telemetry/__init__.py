"""Logs and metrics: the bottom layer every part may use."""
