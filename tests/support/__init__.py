"""Helpers shared by the test packages: servers, clients, reference data, assertions."""
