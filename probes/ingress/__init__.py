"""Ingress: the hosts behind ingress controllers and load balancers, and their HTTPS probes."""
