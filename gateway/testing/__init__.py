"""Testing helpers for paymux and for channel-plugin authors.

- `gateway.testing.server`: run a gateway (or a simulator) on loopback with real HTTP.
- `gateway.testing.conformance`: the suite every channel plugin passes. Subclass
  `ChannelConformance`, point it at your `ChannelHarness`, and pytest runs the suite on your plugin.
"""
