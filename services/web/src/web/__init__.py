"""Knotenpunkt's web app: pages for staff, a backend for the front end (decision 0013)."""
