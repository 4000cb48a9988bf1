"""Built-in channel plugins. Each is registered through the `paymux` entry-point group,
exactly as a third-party plugin would be."""
