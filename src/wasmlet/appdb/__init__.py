"""The application database: what functions reach through `db_query`.

Apart from the platform's own tables: on SQLite a separate file, on PostgreSQL the
user's schemas reached through a role without rights on the platform schema. Also
installs and drops the change-capture triggers of database-trigger functions.
"""
