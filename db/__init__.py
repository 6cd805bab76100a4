"""narrwatch's SQL store: models, sessions and Alembic migrations (SQLite and PostgreSQL)."""
