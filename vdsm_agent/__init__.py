"""The per-host agent: a JSON-RPC server that applies VM and NIC changes to libvirt."""
