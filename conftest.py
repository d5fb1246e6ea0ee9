pytest_plugins = ["knotenpunkt.testing.fixtures"]
