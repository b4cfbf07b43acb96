"""aksnet-top's per-node agent: the DNS and egress probes run from one node's vantage.

It runs in a DaemonSet pod on every node (``aksnet-top agent run``), keeps a bounded feed
of results and serves it on one port as JSON (read by the app through the API server's
pod proxy) and as Prometheus metrics. Modules: ``core`` (the agent on an event loop),
``wire`` (the JSON contract), ``http`` (the server), ``main`` (the command line).

Nothing is imported here: ``probes.agent.cli`` and the app import only what they use.
"""
