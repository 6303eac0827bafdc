"""Functions, their versions and their configuration, kept in the platform database."""
