"""Testing helpers for paymux and for channel-plugin authors.

- `gateway.testing.server`: run a gateway (or a simulator) on loopback with real HTTP.
- `gateway.testing.conformance`: the suite every channel plugin passes. Subclass
  `ChannelConformance`, point it at your `ChannelHarness`, and pytest runs the suite on your plugin.
- `gateway.testing.kit`: the pytest plugin (entry point `pytest11`, paymux's `[kit]` extra) that gates
  the suite's checks by the capabilities a plugin declares, reports what it did not ask or could not
  cover, and fails the latter under `--kit-strict`.
"""
