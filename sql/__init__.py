"""The schema migrations, applied in order by engine.adapters.migrations.

This folder is the single source of the schema.  The wheel ships it as the package
``engine.schema_sql`` (see pyproject.toml), so an installed engine finds it through
importlib.resources wherever it is installed.
"""
