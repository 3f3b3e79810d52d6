"""The contract the engine and the host agent share: NIC parameters, error codes, config loading."""
