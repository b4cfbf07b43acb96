"""The ingress path: Ingress and IngressClass, LoadBalancer services and what Azure makes
of their annotations, the controllers behind each class, cert-manager and Gateway API
objects when their CRDs are served, and what each host resolves to.

`model` holds the records, `parse` turns raw API JSON into them, `azurelb` reads a
LoadBalancer service's annotations the way the Azure cloud provider does, `view` joins
it all into the pane's rows (all four pure); `kinds` says what the Kubernetes source
watches and `resolve` asks the cluster DNS for each host.
"""
