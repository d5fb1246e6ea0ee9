"""Test support written once for every service: real infrastructure, unique names, polling."""
