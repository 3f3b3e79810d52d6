"""The engine daemon: owns the database, validates requests, serves the API, calls hosts."""
