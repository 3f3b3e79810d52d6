"""Developer tooling behind `make run` and the test fixtures: Postgres clusters, the tiny guest."""
